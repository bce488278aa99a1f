"""The native element-wise CNN layers (kernels/native_cnn.c) against torch bit for bit: pooling, sign.

Inputs that drive every rule of torch's CPU kernel: ties (integer pre-activations tie often: the first
wins), NaN (wins; of two, the last), windows of -inf (the first position), +inf, -0.0 against +0.0
(equal: the first), odd heights and widths (the last row and column dropped, their gradient 0), and
gradients with -0.0 (torch adds them to a zero: +0.0), NaN and inf. The VGG uses it in its poolings.
"""

import pytest
import torch
import torch.nn.functional as F

from rramk import models
from rramk.kernels import native, native_cnn
from rramk.nn.pooling import MaxPool2x2, max_pool2x2

pytestmark = pytest.mark.skipif(not native.available(), reason="no C compiler: the native kernels are not built")

SHAPES = [(1, 1, 2, 2), (2, 3, 5, 7), (3, 4, 8, 8), (1, 2, 33, 17), (2, 1, 3, 2)]


def _awkward(shape, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-3, 4, shape, generator=g).float()  # many ties
    flat = x.view(-1)
    specials = torch.tensor([float("nan"), float("-inf"), float("inf"), -0.0, 0.0])
    picks = torch.randint(0, flat.numel(), (max(1, flat.numel() // 5),), generator=g)
    flat[picks] = specials[torch.randint(0, len(specials), picks.shape, generator=g)]
    return x


def _grad(shape, seed):
    g = torch.Generator().manual_seed(seed + 1)
    grad = torch.randn(shape, generator=g)
    grad.view(-1)[::3] = -0.0
    grad.view(-1)[-1] = float("nan")
    return grad


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_values_and_gradients_are_torchs(shape, threads, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    for seed in range(3):
        x = _awkward(shape, seed)
        mine, theirs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        out, expected = max_pool2x2(mine), F.max_pool2d(theirs, 2)
        assert torch.equal(out.view(torch.int32), expected.view(torch.int32)), "values differ (bits compared)"
        grad = _grad(expected.shape, seed)
        out.backward(grad)
        expected.backward(grad)
        assert torch.equal(mine.grad.view(torch.int32), theirs.grad.view(torch.int32)), "gradients differ (bits)"


def test_the_window_rules_by_hand():
    nan, inf = float("nan"), float("inf")
    x = torch.tensor([[[[1.0, 1.0, nan, 2.0, -inf, -inf],
                        [1.0, 1.0, nan, 3.0, -inf, -inf]]]])
    out, where = native_cnn.max_pool2x2(x)
    assert where.flatten().tolist() == [0, 2, 0]  # a tie: the first; two NaN: the last; all -inf: the first
    assert out[0, 0, 0, 0] == 1 and out[0, 0, 0, 1].isnan() and out[0, 0, 0, 2] == -inf


def test_the_vgg_pools_with_it_and_refuses_nothing_torch_takes():
    model = models.cifar10_vgg(width=0.04)
    assert all(isinstance(getattr(model, name), MaxPool2x2) for name in ("pool2", "pool4", "pool6"))
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)  # not float32: torch's own pooling
    assert torch.equal(max_pool2x2(x), F.max_pool2d(x, 2))
    with pytest.raises(ValueError, match="^x: a 2x2 window needs an image of at least 2x2, got 1x5"):
        native_cnn.max_pool2x2(torch.ones(1, 1, 1, 5))


@pytest.mark.parametrize("threads", [1, 2])
def test_the_sign_and_its_mask_are_torchs(threads, monkeypatch):
    """native_cnn.sign_ste against rramk.nn.xnor.sign_pm1 and |x| <= 1: NaN (-1, outside), +-0 (+1), +-1
    (inside: the boundary passes), +-inf, and the STE's gradient through it (sign_ste takes it on CPUs)."""
    from rramk.nn.binarize import sign_ste as ste
    from rramk.nn.xnor import sign_pm1

    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 37, generator=g) * 1.5
    x.view(-1)[:8] = torch.tensor([float("nan"), -0.0, 0.0, 1.0, -1.0, float("inf"), float("-inf"), 1.0000001])
    out, inside = native_cnn.sign_ste(x, with_mask=True)
    assert torch.equal(out, sign_pm1(x)) and torch.equal(inside, x.abs() <= 1)
    assert native_cnn.sign_ste(x, with_mask=False)[1] is None
    xr = x.clone().requires_grad_(True)
    grad = torch.randn(x.shape, generator=g)
    ste(xr).backward(grad)
    assert torch.equal(xr.grad, torch.where(x.abs() <= 1, grad, torch.zeros(())))
