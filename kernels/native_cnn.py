"""The binary CNN's element-wise layers on CPU tensors (C: native_cnn.c, in the library of ``native``):
2x2 max pooling, torch's ``max_pool2d(x, 2)`` bit for bit (values, the gradient's route and its
-0 -> +0), the window position of each maximum kept in a byte instead of an int64 index; and the
sign with its straight-through mask in one pass (``rramk.nn.binarize``)."""

from __future__ import annotations

import ctypes

import torch

from . import native

__all__ = ["max_pool2x2", "max_pool2x2_backward", "sign_ste"]


class _Pool(ctypes.Structure):
    """The C ``Pool`` struct (native_cnn.c): field for field."""

    _fields_ = [(name, ctypes.c_void_p) for name in ("x", "out", "where", "grad", "grad_x")] + [
        (name, ctypes.c_int64) for name in ("planes", "h", "w", "threads")]


def _run(name: str, pool: _Pool) -> None:
    function = getattr(native.library(), name)
    function.argtypes = [ctypes.POINTER(_Pool)]
    function.restype = None
    function(ctypes.byref(pool))


def _check(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or x.device.type != "cpu" or x.dim() != 4:
        raise ValueError(f"{name}: expected a 4-D float32 CPU tensor, got "
                         f"{getattr(x, 'dtype', type(x).__name__)} of shape {tuple(getattr(x, 'shape', ()))}")


def max_pool2x2(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, where): ``max_pool2d(x, 2)`` of (N, C, H, W) float32 ``x``, and each maximum's position in
    its window (uint8: 0 top left, 1 top right, 2 bottom left, 3 bottom right)."""
    _check(x, "x")
    x = x.contiguous()
    n, c, h, w = x.shape
    if h < 2 or w < 2:
        raise ValueError(f"x: a 2x2 window needs an image of at least 2x2, got {h}x{w}")
    out = torch.empty((n, c, h // 2, w // 2), dtype=torch.float32)
    where = torch.empty((n, c, h // 2, w // 2), dtype=torch.uint8)
    _run("rramk_max_pool2x2", _Pool(x.data_ptr(), out.data_ptr(), where.data_ptr(), None, None, n * c, h, w,
                                    torch.get_num_threads()))
    return out, where


def max_pool2x2_backward(grad: torch.Tensor, where: torch.Tensor, shape) -> torch.Tensor:
    """The gradient of x (``shape``) from the output's ``grad`` and the forward's ``where``."""
    _check(grad, "grad")
    grad = grad.contiguous()
    n, c, h, w = shape
    if tuple(grad.shape) != (n, c, h // 2, w // 2) or tuple(where.shape) != tuple(grad.shape):
        raise ValueError(f"grad: expected shape {(n, c, h // 2, w // 2)} (and where alike), got {tuple(grad.shape)}")
    grad_x = torch.empty((n, c, h, w), dtype=torch.float32)
    _run("rramk_max_pool2x2_backward", _Pool(None, None, where.contiguous().data_ptr(), grad.data_ptr(),
                                             grad_x.data_ptr(), n * c, h, w, torch.get_num_threads()))
    return grad_x


def sign_ste(x: torch.Tensor, with_mask: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(s(x), |x| <= 1 or None) of a float32 CPU tensor: +1.0 where x >= 0, -1.0 elsewhere (NaN too); the
    mask as bool (NaN: False), computed only ``with_mask``."""
    if not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or x.device.type != "cpu":
        raise ValueError(f"x: expected a float32 CPU tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    x = x.contiguous()
    out = torch.empty_like(x)
    inside = torch.empty(x.shape, dtype=torch.bool) if with_mask else None
    function = native.library().rramk_sign_ste
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
    function.restype = None
    function(x.data_ptr(), out.data_ptr(), None if inside is None else inside.data_ptr(), x.numel(),
             torch.get_num_threads())
    return out, inside
