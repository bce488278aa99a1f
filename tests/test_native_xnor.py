"""The native XNOR convolution (kernels/native_xnor.c) against torch's float convolution of the signs.

Every popcount version the CPU runs, at every instruction-set level it runs (x86-64-v4 with VPOPCNTQ,
v3 with AVX2 nibble lookups, v2 scalar), on shapes that drive each branch: channels across 64-bit word
boundaries (1, 63, 64, 65, 130), output channels across the tile of 16 (1, 15, 17, 33), rows of
positions across the tile of 8 (1, 7, 9, 12), padding 0, 1, 2 (corner, edge and interior taps), strides
1, 2, 3, kernels 1x1 to 5x5, NaN and 0 inputs (NaN reads -1, 0 reads +1). The products are integers, so
"equal" is exact. The training path: CPU layers in "auto" mode run it, with the float path's outputs
and gradients bit for bit.
"""

import pytest
import torch
import torch.nn.functional as F

from rramk import models
from rramk.kernels import native, native_xnor
from rramk.nn import binary_products
from rramk.nn.xnor import sign_pm1

pytestmark = pytest.mark.skipif(not native.available(), reason="no C compiler: the native kernels are not built")

# (N, C, H, W, O, k, padding, stride)
SHAPES = {
    "C1-O1-1x1": (1, 1, 1, 1, 1, 1, 0, 1),
    "C3-O5-5x7-pad1": (2, 3, 5, 7, 5, 3, 1, 1),
    "C63-O15-9x12-pad1": (2, 63, 9, 12, 15, 3, 1, 1),
    "C64-O17-7x9-pad2-k5": (1, 64, 7, 9, 17, 5, 2, 1),
    "C65-O33-8x8-stride2": (3, 65, 8, 8, 33, 3, 1, 2),
    "C130-O16-4x4-pad2": (2, 130, 4, 4, 16, 3, 2, 1),
    "C5-O3-6x6-k2-stride3": (2, 5, 6, 6, 3, 2, 0, 3),
    "C70-O9-9x6-stride(2,1)": (3, 70, 9, 6, 9, 3, 1, (2, 1)),
}


def _operands(shape, seed):
    n, c, h, w, o, k, _, _ = shape
    g = torch.Generator().manual_seed(seed)
    x, weight = torch.randn(n, c, h, w, generator=g), torch.randn(o, c, k, k, generator=g)
    x.view(-1)[0], x.view(-1)[-1], weight.view(-1)[-1] = float("nan"), 0.0, -0.0
    return x, weight


def _versions():
    """(level, popcount version) pairs this CPU runs: every level, and each version its build has."""
    pairs = []
    for level, _ in native.isa_levels():
        if level == "x86-64":  # no POPCNT instruction at the baseline: a slow software count, covered by v2
            continue
        pairs += [(level, "scalar"), (level, "auto")]
        if level in ("x86-64-v3", "x86-64-v4"):
            pairs.append((level, "avx2"))
        if level == "x86-64-v4" and "avx512_vpopcntdq" in native.cpu_features():
            pairs.append((level, "vpopcntq"))
    return pairs


@pytest.fixture
def at_level(monkeypatch):
    """A function that builds (or finds) the library of a level and makes it the one in use."""
    def use(level):
        monkeypatch.setenv("RRAMK_NATIVE_ISA", level)
        native.library.cache_clear()
    yield use
    native.library.cache_clear()


@pytest.mark.parametrize("level,popcount", _versions())
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_every_version_equals_the_float_convolution_of_the_signs(shape, level, popcount, at_level):
    at_level(level)
    x, weight = _operands(shape, seed=len(level) + sum(shape[:6]))
    *_, padding, stride = shape
    expected = F.conv2d(sign_pm1(x), sign_pm1(weight), padding=padding, stride=stride)
    chosen = []
    out = native_xnor.xnor_conv2d(x, weight, padding, stride, popcount=popcount, chosen=chosen)
    assert out.dtype == torch.float32 and out.shape == expected.shape
    assert torch.equal(out, expected), f"{level} {chosen}: {int((out != expected).sum())} outputs differ"
    assert chosen[0] == popcount or popcount == "auto"


def test_auto_takes_the_widest_version(at_level):
    widest = native.isa_levels()[0][0]
    at_level(widest)
    chosen = []
    native_xnor.xnor_conv2d(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 1, 1), 0, popcount="auto", chosen=chosen)
    expected = {"x86-64-v4": "vpopcntq" if "avx512_vpopcntdq" in native.cpu_features() else "avx2",
                "x86-64-v3": "avx2"}.get(widest, "scalar")
    assert chosen == [expected]


def test_bad_arguments_are_refused(at_level):
    x, w = torch.ones(1, 2, 3, 3), torch.ones(4, 2, 3, 3)
    with pytest.raises(ValueError, match="^popcount: expected one of auto, scalar, avx2, vpopcntq, got 'fast'"):
        native_xnor.xnor_conv2d(x, w, 1, popcount="fast")
    with pytest.raises(ValueError, match="^w_sign: expected 2 input channels"):
        native_xnor.xnor_conv2d(x, torch.ones(4, 3, 3, 3), 1)
    with pytest.raises(TypeError, match="^x_sign: expected a floating-point tensor"):
        native_xnor.xnor_conv2d(x.to(torch.int32), w, 1)
    levels = [level for level, _ in native.isa_levels()]
    if "x86-64-v2" in levels:
        at_level("x86-64-v2")
        with pytest.raises(ValueError, match=r"^popcount: 'avx2' is not in this build \(x86-64-v2\) or CPU"):
            native_xnor.xnor_conv2d(x, w, 1, popcount="avx2")


def _forward_and_grads(mode, monkeypatch):
    monkeypatch.setattr(binary_products, "MODE", mode)
    torch.manual_seed(0)
    model = models.cifar10_vgg(width=0.04)
    x, y = torch.randn(6, 3, 32, 32), torch.randint(0, 10, (6,))
    out = model(x)
    F.cross_entropy(out, y).backward()
    return out.detach(), [p.grad.clone() for p in model.parameters()]


def test_the_training_path_takes_it_with_the_float_paths_bits(monkeypatch):
    """A CPU VGG in "auto" mode convolves by the native kernel; outputs and every gradient are the
    float path's bit for bit (the backward is the same aten.convolution_backward call)."""
    assert binary_products.choose_path(100, 48, 432, "cpu", conv=True) == "native"
    assert binary_products.choose_path(100, 48, 432, "cpu") == "float"  # matrix products stay float on CPU
    calls = []
    original = native_xnor.xnor_conv2d
    monkeypatch.setattr(native_xnor, "xnor_conv2d", lambda *a, **k: calls.append(1) or original(*a, **k))
    out, grads = _forward_and_grads("auto", monkeypatch)
    assert len(calls) == 5  # conv2..conv6: conv1 sees the image, not signs
    expected_out, expected_grads = _forward_and_grads("float", monkeypatch)
    assert torch.equal(out, expected_out)
    assert all(torch.equal(g, e) for g, e in zip(grads, expected_grads))
