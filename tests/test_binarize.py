"""sign_ste: forward q(x) = +1 if x >= 0 else -1; backward dL/dq * 1{|x| <= 1}, exactly."""

import pytest
import torch

from rramk.nn.binarize import SignSTE, sign_ste

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def _special_values(dtype):
    """Ties, the |x| = 1 boundary and its float neighbours, large values, infinities."""
    one = torch.tensor(1.0, dtype=dtype)
    above = torch.nextafter(one, torch.tensor(2.0, dtype=dtype)).item()
    below = torch.nextafter(one, torch.tensor(0.0, dtype=dtype)).item()
    values = [0.0, -0.0, 1.0, -1.0, above, -above, below, -below, 0.5, -0.5, 3.0, -3.0,
              1e-3, -1e-3, float("inf"), float("-inf")]
    return torch.tensor(values, dtype=dtype)


def _inputs(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    random = (3 * torch.randn(3, 37, generator=g)).to(dtype)
    return torch.cat([_special_values(dtype), random.flatten()])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_forward_is_sign_with_tie_plus_one(dtype, seed):
    x = _inputs(dtype, seed)
    q = sign_ste(x)
    expected = torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))
    assert q.dtype == dtype and q.shape == x.shape
    assert torch.equal(q, expected), f"first mismatch at index {(q != expected).nonzero()[0].item()}"
    assert q[0].item() == 1.0 and q[1].item() == 1.0  # x = 0 and x = -0 read +1


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_backward_is_hard_tanh_pseudo_gradient(dtype, seed):
    x = _inputs(dtype, seed).requires_grad_()
    grad_q = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed + 1)).to(dtype)
    sign_ste(x).backward(grad_q)
    expected = grad_q * (x.detach().abs() <= 1)
    assert torch.equal(x.grad, expected), f"first mismatch at {(x.grad != expected).nonzero()[0].item()}"


def test_boundary_passes_and_just_outside_is_blocked():
    x = torch.tensor([-1.0, 1.0, -1.0000001, 1.0000001, 0.0], requires_grad=True)
    sign_ste(x).backward(torch.full_like(x, 2.0))
    assert x.grad.tolist() == [2.0, 2.0, 0.0, 0.0, 2.0]


def test_blocked_infinite_gradient_does_not_leak():
    x = torch.tensor([5.0, 0.5], requires_grad=True)
    sign_ste(x).backward(torch.tensor([float("inf"), 1.0]))
    assert x.grad.tolist() == [0.0, 1.0]


def test_module_is_the_function():
    x = torch.tensor([-2.0, -0.3, 0.0, 0.7, 1.5], requires_grad=True)
    y = torch.tensor(x.detach().tolist(), requires_grad=True)
    SignSTE()(x).sum().backward()
    sign_ste(y).sum().backward()
    assert torch.equal(SignSTE()(x), sign_ste(y)) and torch.equal(x.grad, y.grad)


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="x: expected a floating-point tensor"):
        sign_ste(torch.tensor([1, -1]))


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_nan_input_reads_minus_one_and_blocks_its_gradient(dtype):
    x = torch.tensor([float("nan"), -float("nan"), 0.5], dtype=dtype, requires_grad=True)
    q = sign_ste(x)
    q.backward(torch.ones_like(q))
    assert q.tolist() == [-1.0, -1.0, 1.0] and x.grad.tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "expanded"])
def test_backward_is_where_bit_for_bit(dtype, layout, seed):
    """The gradient is torch.where(|x| <= 1, grad, +0.0) to the bit (the backward ANDs the float's
    bits with a mask): NaN, inf and -0.0 gradients pass inside, +0.0 replaces them outside,
    whatever the gradient's strides."""
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([_special_values(dtype), torch.tensor([float("nan")], dtype=dtype),
                   (3 * torch.randn(23, generator=g)).to(dtype)]).reshape(5, 8)
    specials = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 0.0], dtype=dtype)
    if layout == "expanded":
        grad = torch.randn(1, 8, generator=g).to(dtype).expand(5, 8)  # stride 0, as a sum's backward gives
    else:
        grad = torch.randn(5, 8, generator=g).to(dtype)
        grad.view(-1)[torch.randperm(40, generator=g)[:15]] = specials.repeat(3)
        if layout == "transposed":
            grad = grad.T.contiguous().T
    assert (layout == "transposed") == (not grad.is_contiguous() and grad.stride()[0] == 1)
    leaf = x.clone().requires_grad_()
    sign_ste(leaf).backward(grad)
    expected = torch.where(x.abs() <= 1, grad, torch.zeros((), dtype=dtype))
    assert torch.equal(_bits(leaf.grad), _bits(expected))
