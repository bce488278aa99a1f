"""Binary (XNOR/popcount) matrix products in PyTorch: the reference of ``rramk.kernels.xnor``.

Signs as in ``rramk.nn.binarize`` and the 2T2R synapse (MODEL.md section 2): s(x) = +1 if x >= 0 (a tie
reads +1), else -1 (NaN reads -1). Stored as bits (1 for +1, 0 for -1), two signs multiply to +1 where
their bits agree, so for sign vectors of length K::

    a . b = (#agree) - (#disagree) = K - 2 * popcount(bits(a) XOR bits(b))

Bit layout of :func:`pack_signs` (every packed tensor of rramk): element k of a row goes to int32 word
k // 32, bit k % 32, least significant first; a row takes ceil(K / 32) words, padding bits 0 (int32:
PyTorch lacks uint32 arithmetic; bit 31 is the sign bit); (+1, -1, +1) packs to 5. Every function is
exact (float matmuls only where sums stay below 2**24 in float32, 2**53 in float64; :func:`xnor_conv2d`
counts zero padding as 0) and written to be read: the specification and test oracle of the Triton
kernels of ``rramk.kernels.xnor`` (same signatures); ``rramk.nn.binary_products`` chooses.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from rramk.kernels.xnor_args import WORD_BITS, as_pair, check_conv2d_args, check_words_for_k, conv2d_output_size

__all__ = ["binary_matmul", "pack_signs", "unpack_signs", "xnor_conv2d", "xnor_matmul"]

_MASK32 = 0xFFFFFFFF


def sign_pm1(x: Tensor) -> Tensor:
    """``s(x)``: +1 where ``x >= 0``, -1 elsewhere (NaN too), in the dtype of ``x``."""
    # 2 * [x >= 0] - 1 is exact in every float dtype, and 6-8x faster on CPUs than
    # torch.where(x >= 0, 1, -1), whose CPU kernel is not vectorized (reports/perf-notes.md #21).
    return (x >= 0).to(x.dtype).mul_(2).sub_(1)


def pack_signs(x: Tensor, dim: int = -1) -> tuple[Tensor, int]:
    """Pack the signs of ``x`` along ``dim`` into int32 words.

    Element ``k`` of the packed dimension goes to word ``k // 32``, bit ``k % 32`` (least
    significant bit first); the bit is 1 where ``x >= 0`` (+1) and 0 elsewhere (-1, NaN). The
    padding bits of the last word are 0.

    Returns ``(packed, K)``: ``packed`` is a contiguous int32 tensor shaped like ``x`` with the
    packed dimension of length ``K`` replaced by ``ceil(K / 32)`` words, and ``K`` is the number
    of signs per row (needed to unpack and to count, since padding bits are not signs).
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0:
        raise ValueError("x: expected at least one dimension to pack along, got a 0-dim tensor")
    rows = x.movedim(dim, -1)
    k = rows.shape[-1]
    n_words = math.ceil(k / WORD_BITS)
    bits = (rows >= 0).to(torch.int64)
    bits = F.pad(bits, (0, n_words * WORD_BITS - k))  # padding bits 0
    bits = bits.reshape(*rows.shape[:-1], n_words, WORD_BITS)
    weights = torch.ones((), dtype=torch.int64, device=x.device) << torch.arange(WORD_BITS, device=x.device)
    words = (bits * weights).sum(-1)  # in [0, 2**32): exact in int64
    words = torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)  # same 32 bits as int32
    return words.movedim(-1, dim).contiguous(), k


def unpack_signs(packed: Tensor, k: int, dim: int = -1, dtype: torch.dtype = torch.float32) -> Tensor:
    """The inverse of :func:`pack_signs`: +1/-1 values of ``dtype``, ``k`` of them along ``dim``."""
    if packed.dtype != torch.int32:
        raise TypeError(f"packed: expected dtype torch.int32, got {packed.dtype}")
    words = packed.movedim(dim, -1).to(torch.int64) & _MASK32
    check_words_for_k(k, words.shape[-1], "packed")
    bits = (words.unsqueeze(-1) >> torch.arange(WORD_BITS, device=packed.device)) & 1
    bits = bits.flatten(-2)[..., :k]
    return (bits.to(dtype) * 2 - 1).movedim(-1, dim)


def popcount32(words: Tensor) -> Tensor:
    """Number of 1 bits of each 32-bit word (held in an int64 tensor), by the SWAR bit trick.

    Counts in 2-bit fields, then 4-bit, then bytes, then sums the four bytes with a multiply
    (Hacker's Delight, 5-2). The Triton kernels use the same steps on uint32.
    """
    x = words & _MASK32
    x = x - ((x >> 1) & 0x55555555)  # each 2-bit field: number of 1s among its 2 bits
    x = (x & 0x33333333) + ((x >> 2) & 0x33333333)  # each 4-bit field: count of its 4 bits
    x = (x + (x >> 4)) & 0x0F0F0F0F  # each byte: count of its 8 bits
    return ((x * 0x01010101) & _MASK32) >> 24  # top byte: sum of the four bytes


def valid_bits(k: int, n_words: int, device=None) -> Tensor:
    """int64 mask of the sign bits (not padding) of each of the ``n_words`` words of a K-row."""
    bits_in_word = (k - WORD_BITS * torch.arange(n_words, device=device)).clamp(0, WORD_BITS)
    return (torch.ones((), dtype=torch.int64, device=device) << bits_in_word) - 1


def _masked_xnor_matmul(a_words: Tensor, b_words: Tensor, a_valid: Tensor) -> Tensor:
    """``sum over valid bits of s(a) * s(b)`` for every row pair: ``popcount(valid) - 2 popcount((a ^ b) & valid)``.

    ``a_words`` (M, W), ``b_words`` (N, W) and ``a_valid`` (M, W) hold 32-bit words in int64;
    a bit of ``a_valid`` says whether that position of row m counts at all (padding and, in a
    convolution, taps outside the image do not). Loops over words to keep memory at (M, N).
    """
    m, n = a_words.shape[0], b_words.shape[0]
    disagree = torch.zeros(m, n, dtype=torch.int64, device=a_words.device)
    for w in range(a_words.shape[1]):
        diff = (a_words[:, w, None] ^ b_words[None, :, w]) & a_valid[:, w, None]
        disagree += popcount32(diff)
    n_valid = popcount32(a_valid).sum(1, keepdim=True)
    return (n_valid - 2 * disagree).to(torch.int32)


def xnor_matmul(a_packed: Tensor, b_packed: Tensor, k: int) -> Tensor:
    """``A_sign @ B_sign^T`` for packed signs A (M, K) and B (N, K), exact, as int32 (M, N).

    ``out[m, n] = K - 2 * popcount(a[m] XOR b[n])``, the XOR taken over the K sign bits only:
    the padding bits of the last word are masked out, so they need not be 0.
    ``a_packed`` (M, ceil(K/32)) and ``b_packed`` (N, ceil(K/32)) are int32 words laid out by
    :func:`pack_signs`.
    """
    for name, t in (("a_packed", a_packed), ("b_packed", b_packed)):
        if t.dtype != torch.int32:
            raise TypeError(f"{name}: expected dtype torch.int32 (packed signs), got {t.dtype}")
        if t.dim() != 2:
            raise ValueError(f"{name}: expected a 2-D tensor (rows, words), got shape {tuple(t.shape)}")
    if b_packed.shape[1] != a_packed.shape[1]:
        raise ValueError(f"b_packed: expected {a_packed.shape[1]} words per row (as a_packed), got {b_packed.shape[1]}")
    check_words_for_k(k, a_packed.shape[1], "a_packed")
    a = a_packed.to(torch.int64) & _MASK32
    b = b_packed.to(torch.int64) & _MASK32
    valid = valid_bits(k, a.shape[1], device=a.device).expand_as(a)
    return _masked_xnor_matmul(a, b, valid)


def xnor_conv2d(x_sign: Tensor, w_sign: Tensor, padding, stride=1) -> Tensor:
    """``conv2d(s(x), s(w))`` with zero padding, exact, as int32 (N, O, H_out, W_out).

    ``x_sign`` (N, C, H, W) and ``w_sign`` (O, C, kh, kw) hold +1/-1 (any floats: their signs
    ``s`` are taken). A tap that falls on the zero padding contributes 0, not +-1, so the result
    equals ``torch.nn.functional.conv2d(s(x), s(w), padding=padding, stride=stride)``.

    As an XNOR product: the im2col patch of output position p is a row of C*kh*kw signs, packed
    like the weight rows; a validity mask, packed alike, has a 1 for each tap inside the image.
    Then ``out = popcount(valid) - 2 * popcount((patch XOR weight) AND valid)``.
    """
    check_conv2d_args(x_sign, w_sign, padding, stride)
    n, c, h, w = x_sign.shape
    o, _, kh, kw = w_sign.shape
    h_out, w_out = conv2d_output_size(h, w, kh, kw, padding, stride)
    unfold = dict(kernel_size=(kh, kw), padding=as_pair(padding, "padding"), stride=as_pair(stride, "stride"))

    # im2col: (N, C*kh*kw, L) with rows ordered (c, ky, kx) like w_sign.reshape(O, -1)
    patches = F.unfold(sign_pm1(x_sign), **unfold)
    inside = F.unfold(torch.ones(1, 1, h, w, dtype=x_sign.dtype, device=x_sign.device), **unfold)
    inside = inside.expand(c, -1, -1).reshape(1, c * kh * kw, -1).expand_as(patches)
    rows = patches.transpose(1, 2).reshape(n * h_out * w_out, c * kh * kw)  # zero padding reads +1 here ...
    valid_rows = inside.transpose(1, 2).reshape(n * h_out * w_out, c * kh * kw) * 2 - 1  # ... and is masked here

    a, k = pack_signs(rows)
    valid, _ = pack_signs(valid_rows)
    b, _ = pack_signs(w_sign.reshape(o, c * kh * kw))
    # only the K sign bits count: the valid mask has 0 in the padding bits (pack_signs pads with 0)
    out = _masked_xnor_matmul(a.to(torch.int64) & _MASK32, b.to(torch.int64) & _MASK32,
                              valid.to(torch.int64) & _MASK32)
    return out.reshape(n, h_out * w_out, o).transpose(1, 2).reshape(n, o, h_out, w_out).contiguous()


def binary_matmul(a_sign: Tensor, b_sign: Tensor) -> Tensor:
    """``s(a) @ s(b)^T`` for A (M, K) and B (N, K), exact, as int32 (M, N).

    A plain float matmul of the +1/-1 signs: exact because every partial sum is an integer of
    magnitude <= K, and float32 holds integers exactly up to 2**24 (float64 up to 2**53, used
    beyond). The float path of ``rramk.nn.binary_products.binary_matmul`` and the oracle of its kernels.
    """
    for name, t in (("a_sign", a_sign), ("b_sign", b_sign)):
        if not (torch.is_floating_point(t) or t.dtype == torch.int8):
            raise TypeError(f"{name}: expected a floating-point (or int8) tensor of +1/-1, got dtype {t.dtype}")
        if t.dim() != 2:
            raise ValueError(f"{name}: expected a 2-D tensor, got shape {tuple(t.shape)}")
    if b_sign.shape[1] != a_sign.shape[1]:
        raise ValueError(f"b_sign: expected {a_sign.shape[1]} columns (K, as a_sign), got {b_sign.shape[1]}")
    dtype = torch.float32 if a_sign.shape[1] <= 2**24 else torch.float64
    return (sign_pm1(a_sign.to(dtype)) @ sign_pm1(b_sign.to(dtype)).T).to(torch.int32)
