"""BinaryLinear / BinaryConv2d: exact forward, STE gradients, and the binary-weight mark."""

import copy
import io
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rramk.nn.layers import BinaryConv2d, BinaryLinear, binary_parameters, clip_latent_weights_, is_binary


def _sign(t):
    return torch.where(t >= 0, 1.0, -1.0).to(t.dtype)


def _randn(*shape, seed, scale=1.5):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _first_mismatch(actual, expected):
    if actual.shape != expected.shape:
        return f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    return tuple(int(i) for i in (actual != expected).nonzero()[0])


# (batch, in_features, out_features): M = 1, K not a multiple of 32, odd sizes.
LINEAR_SHAPES = {"1x1x1": (1, 1, 1), "3x37x5": (3, 37, 5), "4x129x33": (4, 129, 33)}


@pytest.mark.parametrize("shape", LINEAR_SHAPES.values(), ids=LINEAR_SHAPES.keys())
def test_linear_forward_is_exact(shape, seed):
    n, k, m = shape
    layer = BinaryLinear(k, m)
    x = _randn(n, k, seed=seed)
    y = layer(x)
    # Independent exact oracle: integer arithmetic on the signs.
    expected = (_sign(x).long() @ _sign(layer.weight.detach()).long().T).float()
    assert torch.equal(y, expected), f"shape {shape}: first mismatch at {_first_mismatch(y, expected)}"
    assert torch.equal(y, F.linear(_sign(x), _sign(layer.weight.detach())))


@pytest.mark.parametrize("shape", LINEAR_SHAPES.values(), ids=LINEAR_SHAPES.keys())
def test_linear_input_layer_keeps_real_inputs(shape, seed):
    n, k, m = shape
    layer = BinaryLinear(k, m, binarize_input=False)
    x = _randn(n, k, seed=seed)
    expected = F.linear(x, _sign(layer.weight.detach()))
    assert torch.equal(layer(x), expected)


def test_linear_ste_gradient_by_hand():
    layer = BinaryLinear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.3, -1.0, 1.5],
                                         [-0.2, 0.0, 0.9]]))
    x = torch.tensor([[0.5, -2.0, 0.0]], requires_grad=True)
    grad_y = torch.tensor([[1.0, 2.0]])
    y = layer(x)
    # q(x) = [1, -1, 1]; q(W) = [[1, -1, 1], [-1, 1, 1]]
    assert y.tolist() == [[3.0, -1.0]]
    y.backward(grad_y)
    # dL/dq(W) = grad_y^T q(x) = [[1, -1, 1], [2, -2, 2]]; |W| <= 1 except W[0, 2] = 1.5
    assert layer.weight.grad.tolist() == [[1.0, -1.0, 0.0], [2.0, -2.0, 2.0]]
    # dL/dq(x) = grad_y q(W) = [-1, 1, 3]; |x| <= 1 except x[1] = -2
    assert x.grad.tolist() == [[-1.0, 0.0, 3.0]]


def test_linear_bias_is_plain_float():
    layer = BinaryLinear(4, 3, bias=True)
    x = _randn(2, 4, seed=1)
    assert torch.equal(layer(x), F.linear(_sign(x), _sign(layer.weight.detach()), layer.bias.detach()))
    assert is_binary(layer.weight) and not is_binary(layer.bias)


# (N, C, H, W, out_channels, kernel, stride, padding)
CONV_SHAPES = {
    "2x3x8x8-k3s1p1": (2, 3, 8, 8, 4, 3, 1, 1),
    "1x5x7x9-k3s2p0": (1, 5, 7, 9, 3, 3, 2, 0),
    "2x2x5x5-k1s1p0": (2, 2, 5, 5, 3, 1, 1, 0),
    "1x37x6x5-k3s1p2": (1, 37, 6, 5, 2, 3, 1, 2),
}


@pytest.mark.parametrize("shape", CONV_SHAPES.values(), ids=CONV_SHAPES.keys())
@pytest.mark.parametrize("binarize_input", [True, False], ids=["binary-input", "real-input"])
def test_conv_forward_and_ste_gradient(shape, binarize_input, seed):
    n, c, h, w, o, k, s, p = shape
    layer = BinaryConv2d(c, o, k, stride=s, padding=p, binarize_input=binarize_input)
    x = _randn(n, c, h, w, seed=seed).requires_grad_()
    y = layer(x)

    x_seen = _sign(x.detach()) if binarize_input else x.detach()
    w_sign = _sign(layer.weight.detach()).requires_grad_()
    x_ref = x_seen.clone().requires_grad_()
    expected = F.conv2d(x_ref, w_sign, stride=s, padding=p)
    assert torch.equal(y, expected), f"{shape}: first mismatch at {_first_mismatch(y, expected)}"
    if binarize_input:  # +-1 operands: exact, also against float64
        exact = F.conv2d(x_seen.double(), w_sign.detach().double(), stride=s, padding=p).float()
        assert torch.equal(y, exact)

    grad_y = torch.randint(-3, 4, y.shape, generator=torch.Generator().manual_seed(seed)).float()
    y.backward(grad_y)
    expected.backward(grad_y)
    weight_mask = layer.weight.detach().abs() <= 1
    assert torch.equal(layer.weight.grad, w_sign.grad * weight_mask)
    input_mask = (x.detach().abs() <= 1) if binarize_input else torch.ones_like(x, dtype=torch.bool)
    assert torch.equal(x.grad, x_ref.grad * input_mask)


def test_layers_are_ordinary_torch_layers():
    linear, conv = BinaryLinear(7, 5), BinaryConv2d(3, 4, 3, padding=1)
    assert isinstance(linear, nn.Linear) and isinstance(conv, nn.Conv2d)
    assert linear.weight.shape == (5, 7) and linear.bias is None
    assert conv.weight.shape == (4, 3, 3, 3) and conv.bias is None
    assert type(linear.weight) is nn.Parameter
    assert "binarize_input=True" in repr(linear)


def test_binary_parameters_are_exactly_the_binary_weights():
    model = nn.Sequential(BinaryConv2d(3, 4, 3, bias=True, binarize_input=False), nn.BatchNorm2d(4),
                          nn.Flatten(), BinaryLinear(4, 2), nn.BatchNorm1d(2), nn.Linear(2, 2))
    binary = binary_parameters(model)
    assert [id(p) for p in binary] == [id(model[0].weight), id(model[3].weight)]
    others = [p for p in model.parameters() if not is_binary(p)]
    assert {id(p) for p in others} == {id(model[0].bias), id(model[1].weight), id(model[1].bias),
                                       id(model[4].weight), id(model[4].bias), id(model[5].weight),
                                       id(model[5].bias)}


def _roundtrip_pickle(m):
    buffer = io.BytesIO()
    torch.save(m, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def _assign_state(m):
    m.load_state_dict(copy.deepcopy(m.state_dict()), assign=True)
    return m


def _swap_double(m):
    previous = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(True)
    try:
        return m.double()
    finally:
        torch.__future__.set_swap_module_params_on_conversion(previous)


CONVERSIONS = {
    "deepcopy": copy.deepcopy,
    "pickle": lambda m: pickle.loads(pickle.dumps(m)),
    "torch.save": _roundtrip_pickle,
    "double": lambda m: m.double(),
    "swap-double": _swap_double,
    "meta": lambda m: m.to("meta"),
    "assign": _assign_state,
}


@pytest.mark.parametrize("convert", CONVERSIONS.values(), ids=CONVERSIONS.keys())
def test_mark_survives_new_parameter_objects(convert):
    model = nn.Sequential(BinaryLinear(3, 2, bias=True), nn.BatchNorm1d(2), BinaryConv2d(1, 1, 1))
    converted = convert(model)
    assert [is_binary(p) for p in converted.parameters()] == [True, False, False, False, True]


def test_clip_latent_weights_clamps_only_binary_weights():
    model = nn.Sequential(BinaryLinear(2, 2, bias=True), nn.BatchNorm1d(2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[-3.0, 0.5], [1.0, 2.0]]))
        model[0].bias.fill_(5.0)
        model[1].weight.fill_(-4.0)
    clip_latent_weights_(model)
    assert model[0].weight.tolist() == [[-1.0, 0.5], [1.0, 1.0]]
    assert model[0].bias.tolist() == [5.0, 5.0] and model[1].weight.tolist() == [-4.0, -4.0]
    assert model[0].weight.requires_grad and model[0].weight.grad is None


def test_device_mode_weights_read_as_themselves():
    """Weights written as exactly +-1 (device mode) are used as they are, and their gradient passes."""
    layer = BinaryLinear(4, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -1.0, -1.0, 1.0], [-1.0, -1.0, 1.0, 1.0]]))
    x = torch.tensor([[0.2, -0.1, 0.9, -0.8]])
    y = layer(x)
    assert torch.equal(y, F.linear(_sign(x), layer.weight.detach()))
    y.sum().backward()
    assert torch.equal(layer.weight.grad, _sign(x).expand(2, 4))


def test_bad_binarizer_is_refused():
    with pytest.raises(TypeError, match="binarizer"):
        BinaryLinear(2, 2, binarizer="sign")


# ----------------------------------------------------------------------------- binary kernels in the layers


@pytest.mark.parametrize("layer_kind", ["linear", "conv"])
def test_kernel_path_equals_float_path(device, monkeypatch, layer_kind):
    """The layers' forward is identical in every rramk.nn.binary_products.MODE (float, binary kernels,
    auto), and so are the gradients (CPU: Triton interpreter, small shapes; GPU: compiled)."""
    from rramk.nn import binary_products

    torch.manual_seed(0)
    if layer_kind == "linear":
        layer = BinaryLinear(45, 7, bias=True).to(device)
        x = torch.randn(5, 45, device=device)
    else:
        layer = BinaryConv2d(5, 6, 3, padding=1, bias=True).to(device)
        x = torch.randn(2, 5, 9, 11, device=device)
    results = {}
    for mode in binary_products.MODES:
        monkeypatch.setattr(binary_products, "MODE", mode)
        layer.zero_grad()
        xi = x.clone().requires_grad_(True)
        out = layer(xi)
        out.pow(2).sum().backward()
        results[mode] = (out.detach(), xi.grad, layer.weight.grad.clone(), layer.bias.grad.clone())
    for mode in ("kernel", "auto"):
        for name, a, b in zip(("output", "grad x", "grad w", "grad b"), results["float"], results[mode]):
            if name == "output":
                assert torch.equal(a, b), f"{mode}: {name} differs"
            else:  # the same float matmuls, possibly in another order of summation
                assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), f"{mode}: {name} differs"


@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 5, 6)], ids=["1d-N7-C5", "2d-N3-C4-5x6"])
def test_global_batch_norm_of_one_process_is_batch_norm(tmp_path, shape):
    """In a process group of one, the global batch is the local one: use_global_batch_norm's
    layers give BatchNorm1d/2d's outputs, gradients and running statistics (to float rounding)."""
    import torch.distributed as dist

    from rramk.nn.batch_norm import GlobalBatchNormLayer, use_global_batch_norm

    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with gloo is not available")
    c = shape[1]
    norm = nn.BatchNorm1d(c) if len(shape) == 2 else nn.BatchNorm2d(c)
    with torch.no_grad():
        norm.weight.copy_(_randn(c, seed=1))
        norm.bias.copy_(_randn(c, seed=2))
    reference = nn.Sequential(nn.Identity(), nn.Sequential(norm))
    reference(_randn(*shape, seed=3))  # running statistics away from their start
    global_ = use_global_batch_norm(copy.deepcopy(reference))
    assert isinstance(global_[1][0], GlobalBatchNormLayer) and not isinstance(reference[1][0], GlobalBatchNormLayer)
    for (name, a), b in zip(reference.state_dict().items(), global_.state_dict().values()):
        assert torch.equal(a, b), name
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        for step in range(2):
            x = _randn(*shape, seed=10 + step) * 3 + 1
            grad_out = _randn(*shape, seed=20 + step)
            results = []
            for model in (reference, global_):
                model.zero_grad()
                xi = x.clone().requires_grad_(True)
                out = model(xi)
                out.backward(grad_out)
                layer = model[1][0]
                results.append((out.detach(), xi.grad, layer.weight.grad, layer.bias.grad, layer.running_mean,
                                layer.running_var))
            names = ("output", "grad x", "grad weight", "grad bias", "running mean", "running var")
            for name, a, b in zip(names, *results):
                assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), f"step {step}: {name} differs"
            assert int(global_[1][0].num_batches_tracked) == int(reference[1][0].num_batches_tracked) == step + 2
    finally:
        dist.destroy_process_group()
    reference.eval(), global_.eval()
    x = _randn(*shape, seed=30)
    assert torch.allclose(reference(x), global_(x), rtol=1e-6, atol=1e-6)  # inference: the running statistics
