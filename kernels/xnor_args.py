"""Argument checks and output sizes of the binary products, shared by kernel and reference.

Used by the Triton launchers (``rramk.kernels.xnor``) and by their PyTorch reference
(``rramk.nn.xnor``), so that both refuse the same inputs with the same messages. Imports neither
Triton nor anything of rramk.
"""

from __future__ import annotations

import math

import torch

__all__ = ["WORD_BITS", "as_pair", "check_conv2d_args", "check_words_for_k", "conv2d_output_size"]

WORD_BITS = 32  # signs per packed int32 word


def check_words_for_k(k: int, n_words: int, name: str) -> None:
    """Raise unless ``k`` signs take exactly the ``n_words`` words per row of the tensor ``name``."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(f"k: expected a non-negative int (signs per row), got {k!r}")
    if math.ceil(k / WORD_BITS) != n_words:
        raise ValueError(
            f"k: {k} signs take {math.ceil(k / WORD_BITS)} words of 32 bits, but {name} has {n_words} words per row")


def as_pair(value, name: str) -> tuple[int, int]:
    """``(v, v)`` for an int ``v``, the pair itself for a pair of ints; else a ValueError naming ``name``."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}")
    return pair


def conv2d_output_size(h: int, w: int, kh: int, kw: int, padding, stride) -> tuple[int, int]:
    """(H_out, W_out) of a 2-D convolution, as ``torch.nn.functional.conv2d`` computes it."""
    (ph, pw), (sh, sw) = as_pair(padding, "padding"), as_pair(stride, "stride")
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def check_conv2d_args(x_sign: torch.Tensor, w_sign: torch.Tensor, padding, stride) -> None:
    """Raise unless ``conv2d(s(x_sign), s(w_sign), padding, stride)`` is defined (floats, 4-D, fitting)."""
    for name, t in (("x_sign", x_sign), ("w_sign", w_sign)):
        if not torch.is_floating_point(t):
            raise TypeError(f"{name}: expected a floating-point tensor of +1/-1, got dtype {t.dtype}")
        if t.dim() != 4:
            raise ValueError(f"{name}: expected a 4-D tensor, got shape {tuple(t.shape)}")
    if w_sign.shape[1] != x_sign.shape[1]:
        raise ValueError(f"w_sign: expected {x_sign.shape[1]} input channels (as x_sign), got {w_sign.shape[1]}")
    (ph, pw), (sh, sw) = as_pair(padding, "padding"), as_pair(stride, "stride")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding: expected >= 0, got {padding!r}")
    if sh < 1 or sw < 1:
        raise ValueError(f"stride: expected >= 1, got {stride!r}")
    h_out, w_out = conv2d_output_size(*x_sign.shape[2:], *w_sign.shape[2:], padding, stride)
    if h_out < 1 or w_out < 1:
        raise ValueError(f"w_sign: a {tuple(w_sign.shape[2:])} kernel does not fit the padded "
                         f"{tuple(x_sign.shape[2:])} image (padding {padding!r})")
