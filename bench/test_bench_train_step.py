"""One training step (forward, backward, optimizer) of each network: ideal BNN against the device model,
and IBM aihwkit's ReRAM presets on the same MNIST network (the tool a device engineer would
otherwise use; skipped, and said so, when aihwkit is not installed: bench/README.md shows how).

The difference is the cost of simulating the devices; report shows it in percent (ratio - 1). The CNN
also with its binary convolutions as float convolutions (``-float-conv``: what the native XNOR
convolution of the CPU path gains, side by side).
Derived figure: images per second. Size sets: the networks below (``tiny``: a few thousand
synapses, so that the device model runs on its reference backend on a CPU).
"""

import contextlib

import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICE, SIZE, narrower_native_levels, native_level
from rramk import models
from rramk.nn import binary_products
from rramk.optim import LatentAdam, WeakResetAdam


@contextlib.contextmanager
def binary_products_mode(mode: str):
    """rramk.nn.binary_products.MODE set to ``mode`` inside the block."""
    before, binary_products.MODE = binary_products.MODE, mode
    try:
        yield
    finally:
        binary_products.MODE = before

NETWORKS = {  # name: (data set, batch, arguments of the model)
    "cpu": {"mnist-784-3000-10-b1000": ("mnist", 1000, {}),
            "cifar10-vgg-w0.125-b100": ("cifar10", 100, {"width": 0.125})},
    "gpu": {"mnist-784-3000-10-b1000": ("mnist", 1000, {}), "cifar10-vgg-w1-b500": ("cifar10", 500, {"width": 1.0})},
    "tiny": {"mnist-784-4-10-b10": ("mnist", 10, {"hidden": 4}), "cifar10-vgg-w0.01-b2": ("cifar10", 2, {"width": 0.01})},
}[SIZE]


def _network(name):
    dataset, batch, arguments = NETWORKS[name]
    torch.manual_seed(0)
    model = (models.mnist_mlp if dataset == "mnist" else models.cifar10_vgg)(**arguments).to(DEVICE)
    shape = (batch, 1, 28, 28) if dataset == "mnist" else (batch, 3, 32, 32)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=g).to(DEVICE)
    y = torch.randint(0, 10, (batch,), generator=g).to(DEVICE)
    return model, x, y


# the device model also with the native kernel at the narrower levels (AVX2 on an AVX-512 CPU), and (the
# CNN) with the binary convolutions as float convolutions: what the native XNOR convolution gains
MODES = ["ideal", "device", "ideal-float-conv", "device-float-conv"] + [
    f"device-{level}" for level in (narrower_native_levels() if SIZE == "cpu" else [])]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("network", list(NETWORKS))
def test_train_step(record, network, mode):
    float_conv = mode.endswith("-float-conv")
    if network.startswith("cifar10") and mode.startswith("device-x86"):
        pytest.skip("the narrower levels on the MNIST network only (its update dominates)")
    if float_conv and not network.startswith("cifar10"):
        pytest.skip("the MLP has no convolutions")
    if float_conv and DEVICE != "cpu":
        pytest.skip("the native XNOR convolution runs on CPUs")
    mode = mode.removesuffix("-float-conv")
    level = mode.removeprefix("device-") if mode.startswith("device-") else None
    with native_level(level), binary_products_mode("float" if float_conv else "auto"):
        model, x, y = _network(network)
        if mode == "ideal":
            optimizer = LatentAdam(model.parameters())
        else:
            optimizer = WeakResetAdam(model.parameters(), lr_pulses=20.0)

        def step():
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()

        record(step, device=DEVICE, derived={"images_per_s": len(x)}, warmup=2, operation="training step",
               provider=mode + ("-float-conv" if float_conv else ""), shape=network,
               synapses=models.count_synapses(model),
               conv_path=binary_products.choose_path(1, 1, 1, DEVICE, conv=True))


@pytest.mark.parametrize("conv", ["native", "float"])
@pytest.mark.parametrize("network", [n for n in NETWORKS if n.startswith("cifar10")])
def test_inference(record, network, conv):
    """The CNN's forward pass in eval mode (validation and test accuracy each epoch): binary
    convolutions by the CPU's native XNOR kernel ("native", rramk's default) or as float convolutions."""
    if DEVICE != "cpu":
        pytest.skip("the native XNOR convolution runs on CPUs")
    with binary_products_mode("auto" if conv == "native" else "float"):
        model, x, _ = _network(network)
        model.eval()

        def forward():
            with torch.no_grad():
                model(x)

        record(forward, device=DEVICE, derived={"images_per_s": len(x)}, warmup=2, operation="inference",
               provider=f"{conv}-conv", shape=network, synapses=models.count_synapses(model),
               conv_path=binary_products.choose_path(1, 1, 1, DEVICE, conv=True))


AIHWKIT_PRESETS = ("ReRamSBPreset", "MixedPrecisionReRamSBPreset")


@pytest.mark.parametrize("preset", AIHWKIT_PRESETS)
@pytest.mark.parametrize("network", [n for n in NETWORKS if n.startswith("mnist")])
def test_train_step_aihwkit(record, network, preset):
    """aihwkit's analog layers with a ReRAM preset in place of the binary layers of the same network
    (784-3000-10, batch norm and hard-tanh between; same batch), trained by its AnalogSGD."""
    pytest.importorskip("aihwkit", reason="aihwkit is not installed (bench/README.md: how to build it for CPU)")
    from aihwkit.nn import AnalogLinear
    from aihwkit.optim import AnalogSGD
    from aihwkit.simulator import presets

    reference, x, y = _network(network)
    linear = [m for m in reference.modules() if isinstance(m, torch.nn.Linear)]
    torch.manual_seed(0)
    layers = []
    for i, m in enumerate(linear):
        layers.append(AnalogLinear(m.in_features, m.out_features, bias=False, rpu_config=getattr(presets, preset)()))
        layers.append(torch.nn.BatchNorm1d(m.out_features))
        if i + 1 < len(linear):
            layers.append(torch.nn.Hardtanh())
    model = torch.nn.Sequential(torch.nn.Flatten(), *layers).to(DEVICE)
    optimizer = AnalogSGD(model.parameters(), lr=0.01)
    optimizer.regroup_param_groups(model)

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    record(step, device=DEVICE, derived={"images_per_s": len(x)}, warmup=1, operation="training step",
           provider=f"aihwkit-{preset}", shape=network, synapses=models.count_synapses(reference))
