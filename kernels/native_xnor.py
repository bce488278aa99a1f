"""The XNOR-popcount convolution on CPU tensors (C: native_xnor.c, in the library of ``native``).

Same signature, checks and result as ``rramk.nn.xnor.xnor_conv2d`` (its specification) and the Triton
``rramk.kernels.xnor.xnor_conv2d``, except that it returns float32: every value is an integer of
magnitude <= C kh kw, exact in float32, so the training forward pass needs no conversion.
"""

from __future__ import annotations

import ctypes

import torch

from . import native
from .xnor_args import as_pair, check_conv2d_args, conv2d_output_size

__all__ = ["POPCOUNTS", "xnor_conv2d"]

POPCOUNTS = ("auto", "scalar", "avx2", "vpopcntq")  # the C kernel's POPCOUNT_* in order

_MAX_K = 2**24  # float32 holds every integer of magnitude <= 2**24


class _XnorConv(ctypes.Structure):
    """The C ``XnorConv`` struct (native_xnor.c): field for field."""

    _fields_ = [(name, ctypes.c_void_p) for name in ("x", "w", "out")] + [
        (name, ctypes.c_int64) for name in ("n", "c", "h", "w_", "o", "kh", "kw", "ph", "pw", "sh", "sw", "ho", "wo",
                                            "threads", "popcount")]


def _function():
    function = native.library().rramk_xnor_conv2d
    function.argtypes = [ctypes.POINTER(_XnorConv)]
    function.restype = ctypes.c_int
    return function


def xnor_conv2d(x_sign: torch.Tensor, w_sign: torch.Tensor, padding, stride=1, *, popcount: str = "auto",
                chosen: list | None = None) -> torch.Tensor:
    """``conv2d(s(x), s(w))`` with zero padding, exact, as float32 (N, O, H_out, W_out), on CPU tensors.

    ``x_sign`` (N, C, H, W) and ``w_sign`` (O, C, kh, kw): any floats (their signs ``s`` are taken: +1
    where >= 0, -1 elsewhere and for NaN); a tap on the zero padding contributes 0. ``popcount``: the
    kernel's version (:data:`POPCOUNTS`; ``auto``: the widest this CPU and build run; every version
    gives the same integers); the one that ran is appended to ``chosen`` where given.
    """
    check_conv2d_args(x_sign, w_sign, padding, stride)
    if popcount not in POPCOUNTS:
        raise ValueError(f"popcount: expected one of {', '.join(POPCOUNTS)}, got {popcount!r}")
    for name, t in (("x_sign", x_sign), ("w_sign", w_sign)):
        if t.device.type != "cpu":
            raise ValueError(f"{name}: the native XNOR convolution runs on CPU tensors, got one on {t.device} "
                             "(on CUDA: rramk.kernels.xnor_conv2d)")
    n, c, h, w = x_sign.shape
    o, _, kh, kw = w_sign.shape
    if c * kh * kw > _MAX_K:
        raise ValueError(f"w_sign: {c * kh * kw} signs per output exceed float32's exact integers (2**24)")
    (ph, pw), (sh, sw) = as_pair(padding, "padding"), as_pair(stride, "stride")
    ho, wo = conv2d_output_size(h, w, kh, kw, padding, stride)
    x = x_sign.detach().to(torch.float32).contiguous()
    weights = w_sign.detach().to(torch.float32).contiguous()
    out = torch.empty((n, o, ho, wo), dtype=torch.float32)
    launch = _XnorConv(x.data_ptr(), weights.data_ptr(), out.data_ptr(), n, c, h, w, o, kh, kw, ph, pw, sh, sw,
                       ho, wo, torch.get_num_threads(), POPCOUNTS.index(popcount))
    ran = _function()(ctypes.byref(launch))
    if ran == -1:
        raise MemoryError(f"the native XNOR convolution could not allocate its buffers for x of shape {tuple(x.shape)}")
    if ran == -2:
        raise ValueError(f"popcount: {popcount!r} is not in this build ({native.library().build_info['level']}) "
                         "or CPU; 'auto' chooses one that is")
    if chosen is not None:
        chosen.append(POPCOUNTS[ran])
    return out
