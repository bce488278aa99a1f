"""Products of two +-1 operands, and the one place that decides how they are computed.

A binary layer multiplies signs: every partial sum is an integer of magnitude at most K (the length
of the dot product), so each path gives *identical* results, in float32 for ``K <= 2**24`` in any
order of summation (also under TF32, which holds +-1 exactly): ``"float"`` (``F.linear`` /
``F.conv2d`` / a float matmul of the signs), ``"xnor"`` (the signs packed into bits,
``K - 2 * popcount(a XOR b)``: ``rramk.kernels.xnor_matmul``, ``xnor_conv2d``), ``"tensor_core"``
(int8 x int8 -> int32 on tensor cores, ``rramk.kernels.sign_matmul_tc``; matrix products only).

:data:`MODE` chooses: ``"auto"`` (a kernel on CUDA tensors; on CPU tensors the native C XNOR convolution,
``"native"``, ``rramk.kernels.native_xnor``, where a C compiler builds it, and the float path for the rest),
``"kernel"`` (a Triton kernel on any device: CUDA, or CPU under TRITON_INTERPRET=1) or ``"float"``;
:func:`choose_path` turns it and the shape into a path, for matrix products and convolutions alike. A
kernel path computes the forward pass only; the backward pass is the float path's (the same
``aten.convolution_backward`` call for a convolution, so the same gradients bit for bit on CPU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rramk.nn import xnor as reference
from rramk.nn.binarize import native_available

__all__ = ["MODE", "MODES", "binary_conv2d", "binary_linear", "binary_matmul", "choose_path"]

MODES = ("auto", "kernel", "float")
MODE = "auto"  # how the products of binary layers run: one of MODES (module docstring)

# Which kernel computes a matrix product, by the number of rows M of its left operand:
# (smallest M, path), first match wins. A PLACEHOLDER from the bytes/operations estimate in
# reports/perf-notes.md (2026-12-01), not a measurement: replace it by the crossover measured
# on a GPU (bench/test_bench_xnor.py); n and k are passed to choose_path for that future rule.
_KERNEL_BY_M = (
    (64, "tensor_core"),
    (0, "xnor"),
)


def choose_path(m: int, n: int, k: int, device, conv: bool = False) -> str:
    """The path of ``s(A) @ s(B)^T`` with A (m, k) and B (n, k) on ``device``, under :data:`MODE`.

    Returns ``"float"``, ``"xnor"``, ``"tensor_core"`` or ``"native"``. A convolution (``conv=True``,
    k = C * kh * kw) has one kernel per device, ``"xnor"`` (Triton ``xnor_conv2d``) or on CPU tensors
    in ``"auto"`` mode ``"native"`` (the C kernel, where it builds); a matrix product takes the first
    row of ``_KERNEL_BY_M`` whose smallest M is <= m.
    """
    if MODE not in MODES:
        raise ValueError(f"rramk.nn.binary_products.MODE: expected one of {', '.join(MODES)}, got {MODE!r}")
    if MODE == "auto" and conv and torch.device(device).type == "cpu" and native_available():
        return "native"
    if MODE == "float" or (MODE == "auto" and torch.device(device).type != "cuda"):
        return "float"
    if conv:
        return "xnor"
    for smallest_m, path in _KERNEL_BY_M:
        if m >= smallest_m:
            return path
    return _KERNEL_BY_M[-1][1]


def _kernel_matmul(a_sign: Tensor, b_sign: Tensor, path: str) -> Tensor:
    """``s(A) @ s(B)^T`` as int32 (M, N) by the kernel ``path`` (``"xnor"`` or ``"tensor_core"``)."""
    from rramk.kernels import xnor as kernel

    if path == "tensor_core":
        return kernel.sign_matmul_tc(a_sign.contiguous(), b_sign.contiguous())
    a_packed, k = kernel.pack_signs(a_sign)
    b_packed, _ = kernel.pack_signs(b_sign)
    return kernel.xnor_matmul(a_packed, b_packed, k)


def binary_matmul(a_sign: Tensor, b_sign: Tensor) -> Tensor:
    """``s(A) @ s(B)^T`` for unpacked A (M, K) and B (N, K), exact, as int32 (M, N), by :func:`choose_path`.

    The float path is the reference ``rramk.nn.xnor.binary_matmul``; every path gives the same integers.
    """
    for name, t in (("a_sign", a_sign), ("b_sign", b_sign)):
        if not isinstance(t, Tensor) or t.dim() != 2:
            raise ValueError(f"{name}: expected a 2-D tensor, got {getattr(t, 'shape', type(t).__name__)}")
    if b_sign.shape[1] != a_sign.shape[1]:
        raise ValueError(f"b_sign: expected {a_sign.shape[1]} columns (K, as a_sign), got {b_sign.shape[1]}")
    path = choose_path(a_sign.shape[0], b_sign.shape[0], a_sign.shape[1], a_sign.device)
    if path == "float":
        return reference.binary_matmul(a_sign, b_sign)
    return _kernel_matmul(a_sign, b_sign, path)


class _LinearProduct(torch.autograd.Function):
    """``x_sign @ w_sign^T`` by a binary kernel; the backward is F.linear's (float matmuls)."""

    @staticmethod
    def forward(ctx, x_sign, w_sign, path):
        ctx.save_for_backward(x_sign, w_sign)
        out = _kernel_matmul(x_sign.reshape(-1, x_sign.shape[-1]), w_sign, path)
        return out.to(x_sign.dtype).reshape(*x_sign.shape[:-1], w_sign.shape[0])

    @staticmethod
    def backward(ctx, grad):
        x_sign, w_sign = ctx.saved_tensors
        grad_x = grad @ w_sign if ctx.needs_input_grad[0] else None
        grad_w = (grad.reshape(-1, grad.shape[-1]).t() @ x_sign.reshape(-1, x_sign.shape[-1])
                  if ctx.needs_input_grad[1] else None)
        return grad_x, grad_w, None


class _Conv2dProduct(torch.autograd.Function):
    """``conv2d`` of +-1 operands with zero padding by an XNOR kernel (``path``: ``"xnor"``, Triton, or
    ``"native"``, C); the backward is F.conv2d's own ``aten.convolution_backward`` call."""

    @staticmethod
    def forward(ctx, x_sign, w_sign, stride, padding, path):
        ctx.save_for_backward(x_sign, w_sign)
        ctx.stride, ctx.padding = stride, padding
        if path == "native":
            from rramk.kernels import native_xnor as kernel
        else:
            from rramk.kernels import xnor as kernel
        return kernel.xnor_conv2d(x_sign.contiguous(), w_sign.contiguous(), padding, stride).to(x_sign.dtype)

    @staticmethod
    def backward(ctx, grad):
        x_sign, w_sign = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[:2]
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
            grad, x_sign, w_sign, None, pair(ctx.stride), pair(ctx.padding), (1, 1), False, (0, 0), 1,
            (need_x, need_w, False))
        return grad_x, grad_w, None, None, None


def binary_linear(x_sign: Tensor, w_sign: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x_sign @ w_sign^T (+ bias)`` for +-1 operands, by :func:`choose_path`.

    ``x_sign``: ``(..., K)`` of +-1; ``w_sign``: ``(M, K)`` of +-1. The float path is
    ``F.linear``; a kernel path returns the identical result in the dtype of ``x_sign``; the bias is
    added to the exact product (one rounding: the same bits on every CPU).
    """
    m = x_sign.numel() // max(x_sign.shape[-1], 1)
    path = choose_path(m, w_sign.shape[0], w_sign.shape[1], x_sign.device)
    # the bias is added after the exact integer sum, on every path: where a CPU's kernel would add it
    # (first or last) decides its rounding
    out = F.linear(x_sign, w_sign) if path == "float" else _LinearProduct.apply(x_sign, w_sign, path)
    return out if bias is None else out + bias


def binary_conv2d(x_sign: Tensor, w_sign: Tensor, bias: Tensor | None = None, stride=1, padding=0) -> Tensor:
    """``conv2d(x_sign, w_sign) (+ bias)`` for +-1 operands with zero padding, by :func:`choose_path`.

    ``x_sign``: ``(N, C, H, W)`` of +-1; ``w_sign``: ``(O, C, kh, kw)`` of +-1. A padded position
    contributes 0, neither +1 nor -1 (the XNOR kernel masks it). The float path is ``F.conv2d``;
    the kernel path returns the identical result in the dtype of ``x_sign``.
    """
    m = x_sign.shape[0] * x_sign.shape[2] * x_sign.shape[3]  # positions of the input: conv has one kernel
    path = choose_path(m, w_sign.shape[0], w_sign[0].numel(), x_sign.device, conv=True)
    if path == "float":  # the bias after the exact sum, as in binary_linear
        out = F.conv2d(x_sign, w_sign, stride=stride, padding=padding)
    else:
        out = _Conv2dProduct.apply(x_sign, w_sign, stride, padding, path)
    return out if bias is None else out + bias.view(1, -1, 1, 1)
