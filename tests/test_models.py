"""The published networks: layer shapes, synapse counts, +-1 hidden activations, output shapes."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rramk.nn.binarize import SignSTE
from rramk.models import cifar10_vgg, count_synapses, mnist_mlp
from rramk.nn.layers import BinaryConv2d, BinaryLinear, binary_parameters, is_binary

BINARY_LAYERS = (BinaryLinear, BinaryConv2d)


def _binary_layers(model):
    return [m for m in model.modules() if isinstance(m, BINARY_LAYERS)]


def _is_plus_minus_one(t):
    return bool(((t == 1) | (t == -1)).all())


def _check_parameter_kinds(model):
    """Binary weights = the binary layers' weights; everything else = batch-norm affine parameters."""
    layers = _binary_layers(model)
    assert [id(p) for p in binary_parameters(model)] == [id(m.weight) for m in layers]
    assert all(m.bias is None for m in layers)
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    assert len(norms) == len(layers)  # batch norm after every layer
    assert {id(p) for p in model.parameters() if not is_binary(p)} == \
        {id(p) for m in norms for p in (m.weight, m.bias)}


def _watch_activations(model):
    """Forward pre-hooks on the binary layers recording (layer, input); hooks on signs recording outputs."""
    seen_inputs, sign_outputs = [], []
    for m in _binary_layers(model):
        m.register_forward_pre_hook(lambda mod, args: seen_inputs.append((mod, args[0].detach())))
    for m in model.modules():
        if isinstance(m, SignSTE):
            m.register_forward_hook(lambda mod, args, out: sign_outputs.append(out.detach()))
    return seen_inputs, sign_outputs


def _check_activations(seen_inputs, sign_outputs, n_layers, n_signs, raw_input):
    assert len(seen_inputs) == n_layers and len(sign_outputs) == n_signs
    (first, x0), rest = seen_inputs[0], seen_inputs[1:]
    assert not first.binarize_input and torch.equal(x0, raw_input.reshape(x0.shape))
    assert not _is_plus_minus_one(x0)  # the image reaches the first layer as it is
    for layer, x in rest:
        assert layer.binarize_input and _is_plus_minus_one(x), f"{layer}: input is not +-1"
    assert all(_is_plus_minus_one(out) for out in sign_outputs)


# ---------------------------------------------------------------- MNIST 784-3000-10


def test_mnist_mlp_published_shapes_and_synapses():
    model = mnist_mlp()
    assert model.fc1.weight.shape == (3000, 784) and not model.fc1.binarize_input
    assert model.fc2.weight.shape == (10, 3000) and model.fc2.binarize_input
    assert model.bn1.num_features == 3000 and model.bn2.num_features == 10
    assert count_synapses(model) == 784 * 3000 + 3000 * 10 == 2_382_000
    _check_parameter_kinds(model)


def test_mnist_mlp_forward(seed):
    model = mnist_mlp(hidden=17)
    seen_inputs, sign_outputs = _watch_activations(model)
    images = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    logits = model(images)
    assert logits.shape == (2, 10)
    _check_activations(seen_inputs, sign_outputs, n_layers=2, n_signs=1, raw_input=images)
    assert torch.equal(model(images.reshape(2, 784)), logits)  # (N, 784) is the same input
    assert count_synapses(model) == 784 * 17 + 17 * 10


@pytest.mark.parametrize("hidden", [0, -3, 2.5, True])
def test_mnist_mlp_refuses_bad_hidden(hidden):
    with pytest.raises(ValueError, match="hidden"):
        mnist_mlp(hidden=hidden)


# ---------------------------------------------------------------- CIFAR-10 VGG


def _conv_and_fc_shapes(model):
    convs = [tuple(m.weight.shape) for m in model.modules() if isinstance(m, BinaryConv2d)]
    fcs = [tuple(m.weight.shape) for m in model.modules() if isinstance(m, BinaryLinear)]
    return convs, fcs


def test_cifar10_vgg_published_shapes_and_synapses():
    model = cifar10_vgg(width=1)  # the only width-1 instance: no forward pass at this size
    convs, fcs = _conv_and_fc_shapes(model)
    widths = [3, 384, 384, 768, 768, 1536, 512]
    assert convs == [(o, i, 3, 3) for i, o in zip(widths, widths[1:])]
    assert fcs == [(1024, 8192), (1024, 1024), (10, 1024)]
    assert 512 * 4 * 4 == 8192
    assert all(m.padding == (1, 1) and m.stride == (1, 1) for m in _binary_layers(model)[:6])
    assert [m.binarize_input for m in _binary_layers(model)] == [False] + [True] * 8
    conv_synapses = 9 * (3 * 384 + 384 * 384 + 384 * 768 + 768 * 768 + 768 * 1536 + 1536 * 512)
    fc_synapses = 8192 * 1024 + 1024 * 1024 + 1024 * 10
    assert count_synapses(model) == conv_synapses + fc_synapses == 36_442_240
    _check_parameter_kinds(model)


def test_cifar10_vgg_layer_order():
    model = cifar10_vgg(width=1 / 16)
    names = list(dict(model.named_children()))
    conv_blocks = []
    for k in range(1, 7):
        conv_blocks += [f"conv{k}"] + ([f"pool{k}"] if k in (2, 4, 6) else []) + [f"bn{k}", f"sign{k}"]
    fc_blocks = ["fc7", "bn7", "sign7", "fc8", "bn8", "sign8", "fc9", "bn9"]
    assert names == conv_blocks + ["flatten"] + fc_blocks


def test_cifar10_vgg_forward_small_width(seed):
    model = cifar10_vgg(width=1 / 16)
    convs, fcs = _conv_and_fc_shapes(model)
    widths = [3, 24, 24, 48, 48, 96, 32]
    assert convs == [(o, i, 3, 3) for i, o in zip(widths, widths[1:])]
    assert fcs == [(64, 32 * 4 * 4), (64, 64), (10, 64)]
    assert count_synapses(model) == 9 * (3 * 24 + 24 * 24 + 24 * 48 + 48 * 48 + 48 * 96 + 96 * 32) \
        + 512 * 64 + 64 * 64 + 64 * 10

    flattened = []
    model.flatten.register_forward_hook(lambda mod, args, out: flattened.append(out.shape))
    seen_inputs, sign_outputs = _watch_activations(model)
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    logits = model(images)
    assert logits.shape == (2, 10)
    assert flattened == [(2, 4 * 4 * 32)]
    _check_activations(seen_inputs, sign_outputs, n_layers=9, n_signs=8, raw_input=images)

    # Gradients reach every parameter through the STE. Batch 8, not 2: with two samples a
    # train-mode batch norm maps every feature to +-1/sqrt(1 + eps), inside the STE window for
    # both samples, and the gradient of the batch-norm shifts of bn7, bn8 sums to exactly 0.
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(8, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (8,), generator=generator)
    F.cross_entropy(model(images), labels).backward()
    for name, p in model.named_parameters():  # float rounding alone would give ~1e-8
        assert p.grad is not None and p.grad.shape == p.shape and p.grad.abs().max() > 1e-4, name


def test_cifar10_vgg_tiny_width_keeps_one_channel():
    model = cifar10_vgg(width=1e-3)
    convs, fcs = _conv_and_fc_shapes(model)
    assert [o for o, *_ in convs] == [1, 1, 1, 1, 2, 1]  # round(1.536) = 2, others at least 1
    assert fcs == [(1, 16), (1, 1), (10, 1)]


@pytest.mark.parametrize("width", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_cifar10_vgg_refuses_bad_width(width):
    with pytest.raises(ValueError, match="width"):
        cifar10_vgg(width=width)


def test_mnist_vgg_shapes_and_synapses_by_hand():
    """The VGG family on 28x28x1 images: poolings 28 -> 14 -> 7 -> 3, so fc7 reads C6 * 3 * 3."""
    from rramk.models import mnist_vgg

    model = mnist_vgg(width=0.125)
    conv = [48, 48, 96, 96, 192, 64]  # round(C / 8)
    fc = [128, 128]
    expected = (1 * conv[0] + sum(a * b for a, b in zip(conv, conv[1:]))) * 9 + conv[5] * 9 * fc[0] \
        + fc[0] * fc[1] + fc[1] * 10
    assert count_synapses(model) == expected == 513_456
    assert tuple(model.fc7.weight.shape) == (128, 64 * 3 * 3)
    assert not model.conv1.binarize_input and model.conv2.binarize_input
    out = model(torch.randn(3, 1, 28, 28))
    assert out.shape == (3, 10)


def test_network_choice_per_data_set():
    from rramk.cli import UsageError
    from rramk.training.run_settings import RunSettings

    mlp = RunSettings("fashion-mnist")
    vgg = RunSettings("fashion-mnist", network="vgg", width=0.125)
    assert mlp.network == "mlp" and mlp.out == "runs/fashion-mnist-all-seed0"  # the default keeps its paths
    assert vgg.out == "runs/fashion-mnist-vgg0.125-all-seed0"
    assert count_synapses(mlp.model()) == 784 * 3000 + 3000 * 10
    assert count_synapses(vgg.model()) == 513_456
    assert RunSettings("cifar10", width=0.125).network == "vgg"
    with pytest.raises(UsageError, match="--network: expected one of vgg for cifar10, got 'mlp'"):
        RunSettings("cifar10", network="mlp")
