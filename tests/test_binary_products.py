"""The dispatcher of binary products: every MODE gives the same integers, by the path it names.

CPU: "auto" takes the native C convolution (tests/test_native_xnor.py) and the float matrix products,
"float" the float path, "kernel" the Triton kernels under the interpreter (small shapes); GPU: "auto"
and "kernel" take the kernels.
"""

import pytest
import torch
import torch.nn.functional as F

import rramk.kernels._launch as launch
import rramk.nn.xnor as reference
from rramk.nn import binary_products
from tests.test_xnor import assert_exactly_equal, random_signs

# (M, N, K): M from 1 to past the XNOR / tensor-core crossover of _KERNEL_BY_M, K around word boundaries
MATMUL_SHAPES = {"M1-N7-K31": (1, 7, 31), "M5-N19-K100": (5, 19, 100), "M70-N9-K45": (70, 9, 45)}


@pytest.fixture(params=binary_products.MODES)
def mode(request, monkeypatch):
    """Each MODE in turn, restored after the test."""
    monkeypatch.setattr(binary_products, "MODE", request.param)
    return request.param


def expected_path(mode, device, m, conv=False):
    if mode == "auto" and conv and device.type == "cpu":
        from rramk.kernels import native

        return "native" if native.available() else "float"
    if mode == "float" or (mode == "auto" and device.type != "cuda"):
        return "float"
    return "xnor" if conv or m < 64 else "tensor_core"


@pytest.mark.parametrize("shape", MATMUL_SHAPES.values(), ids=MATMUL_SHAPES.keys())
def test_binary_matmul_is_exact_in_every_mode(shape, mode, device, seed):
    m, n, k = shape
    a, b = random_signs((m, k), seed, device), random_signs((n, k), seed + 1, device)
    a[0, 0] = 0.0  # a tie reads +1 on every path
    expected = (reference.sign_pm1(a).double() @ b.double().T).to(torch.int32)
    path = binary_products.choose_path(m, n, k, device)
    assert path == expected_path(mode, device, m)
    assert_exactly_equal(binary_products.binary_matmul(a, b), expected, f"binary_matmul {mode} ({path}) {shape}")
    assert_exactly_equal(reference.binary_matmul(a, b), expected, f"reference binary_matmul {shape}")


def _linear_and_grads(x, w, bias):
    x, w, bias = (t.clone().requires_grad_(True) for t in (x, w, bias))
    out = binary_products.binary_linear(x, w, bias)
    out.pow(2).sum().backward()
    return out.detach(), x.grad, w.grad, bias.grad


def _conv_and_grads(x, w, bias, stride, padding):
    x, w, bias = (t.clone().requires_grad_(True) for t in (x, w, bias))
    out = binary_products.binary_conv2d(x, w, bias, stride=stride, padding=padding)
    out.pow(2).sum().backward()
    return out.detach(), x.grad, w.grad, bias.grad


@pytest.mark.parametrize("op", ["linear", "conv2d"])
def test_every_mode_gives_identical_layer_products(op, device, seed, monkeypatch):
    """binary_linear / binary_conv2d: the same output in every MODE, the same gradients up to float order."""
    gen = torch.Generator().manual_seed(seed)
    if op == "linear":  # a 3-D input (..., K): M = 2 * 3 rows
        x, w = random_signs((2, 3, 45), seed, device), random_signs((7, 45), seed + 1, device)
        bias = torch.randn(7, generator=gen).to(device)
        expected = (x.double() @ w.double().T + bias.double()).float()
        run = lambda: _linear_and_grads(x, w, bias)  # noqa: E731
        m = 6
    else:
        x, w = random_signs((2, 5, 9, 11), seed, device), random_signs((6, 5, 3, 3), seed + 1, device)
        bias = torch.randn(6, generator=gen).to(device)
        expected = F.conv2d(x.double(), w.double(), bias.double(), stride=(2, 1), padding=1).float()
        run = lambda: _conv_and_grads(x, w, bias, stride=(2, 1), padding=1)  # noqa: E731
        m = 2 * 9 * 11
    results = {}
    for mode in binary_products.MODES:
        monkeypatch.setattr(binary_products, "MODE", mode)
        assert binary_products.choose_path(m, w.shape[0], w[0].numel(), device, conv=op == "conv2d") == (
            expected_path(mode, device, m, conv=op == "conv2d"))
        results[mode] = run()
    assert torch.equal(results["float"][0], expected), f"{op}: float path differs from the float64 product"
    for mode in ("auto", "kernel"):
        for name, a, b in zip(("output", "grad x", "grad w", "grad bias"), results["float"], results[mode]):
            if name == "output":
                assert torch.equal(b, a), f"{op} {mode}: output differs from the float path"
            else:  # the same float products of the gradient, possibly summed in another order
                assert torch.allclose(b, a, rtol=1e-5, atol=1e-5), f"{op} {mode}: {name} differs from the float path"


def test_choose_path():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert binary_products.MODE == "auto"  # the default
    assert binary_products.choose_path(4096, 4096, 4096, cpu) == "float"
    assert binary_products.choose_path(4096, 4096, 4096, cpu, conv=True) == "native"  # with a C compiler
    assert binary_products.choose_path(1, 3000, 784, cuda) == "xnor"
    assert binary_products.choose_path(500, 1024, 8192, cuda) == "tensor_core"
    assert binary_products.choose_path(500, 1024, 8192, cuda, conv=True) == "xnor"  # the one conv kernel
    paths = [binary_products.choose_path(m, 512, 512, cuda) for m in range(1, 300)]
    assert paths == sorted(paths, key=["xnor", "tensor_core"].index), "one crossover in M, from XNOR to tensor cores"


@pytest.mark.parametrize("value", ["fast", "reference", None])
def test_unknown_mode_is_refused(value, monkeypatch):
    monkeypatch.setattr(binary_products, "MODE", value)
    with pytest.raises(ValueError, match=r"^rramk\.nn\.binary_products\.MODE: expected one of auto, kernel, float"):
        binary_products.binary_matmul(torch.ones(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"^rramk\.nn\.binary_products\.MODE"):
        binary_products.binary_conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3))


def test_binary_matmul_rejects_bad_input():
    with pytest.raises(ValueError, match="^a_sign: expected a 2-D tensor"):
        binary_products.binary_matmul(torch.ones(3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="^b_sign: expected 3 columns"):
        binary_products.binary_matmul(torch.ones(2, 3), torch.ones(2, 4))


def test_kernel_mode_on_cpu_without_interpreter_says_so(monkeypatch):
    # as if rramk.kernels had been imported without TRITON_INTERPRET=1 on this CPU
    monkeypatch.setattr(launch, "runs_interpreted", lambda kernel: False)
    monkeypatch.setattr(binary_products, "MODE", "kernel")
    with pytest.raises(RuntimeError, match="^x: a Triton kernel needs a CUDA tensor"):
        binary_products.binary_matmul(torch.ones(2, 3), torch.ones(2, 3))
    with pytest.raises(RuntimeError, match="^x_sign: "):
        binary_products.binary_conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3))
    # "auto" needs no kernel on the CPU
    monkeypatch.setattr(binary_products, "MODE", "auto")
    expected = torch.full((2, 4), -3, dtype=torch.int32)
    assert torch.equal(binary_products.binary_matmul(torch.ones(2, 3), -torch.ones(4, 3)), expected)
