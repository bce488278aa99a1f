"""The VGG's 2x2 max pooling, by the native C kernel on CPUs (``rramk.kernels.native_cnn``) and by
torch elsewhere: the same values and gradients bit for bit (tests/test_native_cnn.py), 3-4x faster on
CPUs, where torch's NCHW pooling is a scalar loop (reports/perf-notes.md)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rramk.nn.binarize import native_available

__all__ = ["MaxPool2x2", "max_pool2x2"]


class _NativeMaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        from rramk.kernels import native_cnn

        out, where = native_cnn.max_pool2x2(x)
        ctx.save_for_backward(where)
        ctx.shape = tuple(x.shape)
        return out

    @staticmethod
    def backward(ctx, grad):
        from rramk.kernels import native_cnn

        (where,) = ctx.saved_tensors
        return native_cnn.max_pool2x2_backward(grad, where, ctx.shape)


def max_pool2x2(x: Tensor) -> Tensor:
    """``torch.nn.functional.max_pool2d(x, 2)``: by the native kernel for float32 CPU tensors where it
    builds, by torch otherwise."""
    if x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4 and native_available():
        return _NativeMaxPool.apply(x)
    return F.max_pool2d(x, 2)


class MaxPool2x2(nn.Module):
    """``nn.MaxPool2d(2)`` by :func:`max_pool2x2`."""

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2x2(x)

    def extra_repr(self) -> str:
        return "kernel_size=2, stride=2"
