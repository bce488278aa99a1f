"""Binary (XNOR/popcount) products in Triton: sign packing, XNOR GEMM and convolution, int8 tensor cores.

Math: with ``s(x) = +1 if x >= 0 else -1`` (a tie reads +1, NaN -1) and +1 stored as bit 1, two rows
of K signs give ``s(a) . s(b) = K - 2 * popcount(bits(a) XOR bits(b))``; popcount is the SWAR trick on
uint32 (Hacker's Delight 5-2: ``tl`` has no portable popcount). :func:`pack_signs` puts element k of
the packed dimension in int32 word ``k // 32``, bit ``k % 32`` (LSB first, padding bits 0):
(OUTER, K, INNER) -> (OUTER, ceil(K/32), INNER). :func:`xnor_matmul` takes packed a (M, W), b (N, W)
and masks the padding; :func:`xnor_conv2d` packs x (N, C, H, W) and w (O, C, kh, kw) along C and
counts a tap on the zero padding as 0; :func:`sign_matmul_tc` multiplies int8 signs on the tensor
cores. Every output is exact int32, with the signatures and results of ``rramk.nn.xnor`` (the
specification). Loop bounds are ``tl.constexpr``: one compilation per layer shape (Triton 3.6's
interpreter cannot loop to a runtime bound under numpy >= 2.4). Which path a layer takes:
``rramk.nn.binary_products``; the cost of each path: reports/perf-notes.md.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._launch import check_device, runs_interpreted
from .xnor_args import WORD_BITS, as_pair, check_conv2d_args, check_words_for_k, conv2d_output_size

__all__ = ["pack_signs", "sign_matmul_tc", "xnor_conv2d", "xnor_matmul"]

_SIGN_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8)


# --------------------------------------------------------------------------- kernels


@triton.jit
def _popcount32(x):
    """Number of 1 bits of each 32-bit word (int32 or uint32), as int32 (SWAR)."""
    x = x.to(tl.uint32, bitcast=True)  # logical shifts: the sign bit is an ordinary bit
    x = x - ((x >> 1) & 0x55555555)  # 2-bit fields: count of their 2 bits
    x = (x & 0x33333333) + ((x >> 2) & 0x33333333)  # 4-bit fields
    x = (x + (x >> 4)) & 0x0F0F0F0F  # bytes
    x = (x * 0x01010101) >> 24  # top byte = sum of the four bytes (the product wraps mod 2**32)
    return x.to(tl.int32)


@triton.jit
def _nonnegative(x):
    """x >= 0 (NaN: False). bfloat16 is compared in float32 (exact; free on a GPU): Triton 3.9's
    interpreter compares bfloat16 with a constant wrongly."""
    if x.dtype == tl.bfloat16:
        x = x.to(tl.float32)
    return x >= 0


@triton.jit
def _pack_signs_kernel(
    x_ptr,  # input, contiguous, viewed as (OUTER, K, INNER); any float dtype or int8
    out_ptr,  # output int32 words, contiguous (OUTER, W, INNER), W = ceil(K / 32)
    n_words,  # OUTER * W * INNER: number of output words
    K,  # length of the packed dimension
    W,  # words per row: ceil(K / 32)
    INNER,  # product of the dimensions after the packed one
    BLOCK: tl.constexpr,  # output words per program
):
    offs_q = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)  # flat word index (o, w, i)
    mask_q = offs_q < n_words
    outer = offs_q // (W * INNER)
    word = (offs_q // INNER) % W
    inner = offs_q % INNER
    offs_bit = tl.arange(0, 32)
    offs_k = word[:, None] * 32 + offs_bit[None, :]  # (BLOCK, 32): element index along K
    mask_x = mask_q[:, None] & (offs_k < K)
    x = tl.load(x_ptr + (outer[:, None] * K + offs_k) * INNER + inner[:, None], mask=mask_x, other=-1)
    bits = tl.where(mask_x & _nonnegative(x), 1, 0).to(tl.int32) << offs_bit[None, :]  # padding bits 0
    # the bits are distinct powers of two, so their int32 sum is their OR (bit 31 wraps to the sign bit)
    tl.store(out_ptr + offs_q, tl.sum(bits, axis=1), mask=mask_q)


@triton.jit
def _xnor_matmul_kernel(
    a_ptr,  # packed signs of A, int32 (M, W) row-major
    b_ptr,  # packed signs of B, int32 (N, W) row-major
    out_ptr,  # out int32 (M, N) row-major: s(A) @ s(B)^T
    M,  # rows of A
    N,  # rows of B
    K: tl.constexpr,  # signs per row (the padding bits beyond K are masked)
    W: tl.constexpr,  # words per row: ceil(K / 32)
    BLOCK_M: tl.constexpr,  # rows of A per program
    BLOCK_N: tl.constexpr,  # rows of B per program
):
    offs_m = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_m = offs_m < M
    mask_n = offs_n < N
    disagree = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
    for w in range(0, W):
        # outer product over one word: the next word of a row sits in the same cache line
        a = tl.load(a_ptr + offs_m * W + w, mask=mask_m, other=0)
        b = tl.load(b_ptr + offs_n * W + w, mask=mask_n, other=0)
        k_left = K - 32 * w  # sign bits in this word: 32 except in the last word
        valid = tl.where(k_left >= 32, -1, (1 << tl.minimum(k_left, 31)) - 1)
        disagree += _popcount32((a[:, None] ^ b[None, :]) & valid)
    out = K - 2 * disagree
    mask_out = mask_m[:, None] & mask_n[None, :]
    tl.store(out_ptr + offs_m[:, None] * N + offs_n[None, :], out, mask=mask_out)


@triton.jit
def _xnor_conv2d_kernel(
    x_ptr,  # packed input signs, int32 (N, CW, H, W), padding bits 0
    w_ptr,  # packed weight signs, int32 (O, CW, KH, KW), padding bits 0
    out_ptr,  # out int32 (N, O, H_OUT, W_OUT)
    n_positions,  # N * H_OUT * W_OUT
    O,  # output channels
    H,  # input height
    W,  # input width
    H_OUT,  # output height
    W_OUT,  # output width
    C: tl.constexpr,  # input channels (sign bits per word column)
    CW: tl.constexpr,  # words per channel column: ceil(C / 32)
    KH: tl.constexpr,  # kernel height
    KW: tl.constexpr,  # kernel width
    STRIDE_H: tl.constexpr,  # vertical stride
    STRIDE_W: tl.constexpr,  # horizontal stride
    PAD_H: tl.constexpr,  # zero rows above and below
    PAD_W: tl.constexpr,  # zero columns left and right
    BLOCK_P: tl.constexpr,  # output positions per program
    BLOCK_O: tl.constexpr,  # output channels per program
):
    offs_p = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)  # flat (n, oy, ox)
    offs_o = tl.program_id(1).to(tl.int64) * BLOCK_O + tl.arange(0, BLOCK_O)
    mask_p = offs_p < n_positions
    mask_o = offs_o < O
    n = offs_p // (H_OUT * W_OUT)
    pos = offs_p % (H_OUT * W_OUT)
    oy = pos // W_OUT
    ox = pos % W_OUT
    acc = tl.zeros((BLOCK_P, BLOCK_O), dtype=tl.int32)
    for ky in range(0, KH):
        iy = oy * STRIDE_H - PAD_H + ky
        for kx in range(0, KW):
            ix = ox * STRIDE_W - PAD_W + kx
            mask_tap = mask_p & (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)  # inside the image
            disagree = tl.zeros((BLOCK_P, BLOCK_O), dtype=tl.int32)
            for cw in range(0, CW):
                x = tl.load(x_ptr + ((n * CW + cw) * H + iy) * W + ix, mask=mask_tap, other=0)
                w = tl.load(w_ptr + ((offs_o * CW + cw) * KH + ky) * KW + kx, mask=mask_o, other=0)
                disagree += _popcount32(x[:, None] ^ w[None, :])  # padding bits are 0 in both
            acc += tl.where(mask_tap[:, None], C - 2 * disagree, 0)  # a padded tap counts 0
    offs_out = (n[:, None] * O + offs_o[None, :]) * (H_OUT * W_OUT) + pos[:, None]
    tl.store(out_ptr + offs_out, acc, mask=mask_p[:, None] & mask_o[None, :])


@triton.jit
def _sign_matmul_tc_kernel(
    a_ptr,  # A (M, K) row-major, float or int8; its signs are used
    b_ptr,  # B (N, K) row-major, float or int8; its signs are used
    out_ptr,  # out int32 (M, N) row-major: s(A) @ s(B)^T
    M,  # rows of A
    N,  # rows of B
    K: tl.constexpr,  # shared dimension
    BLOCK_M: tl.constexpr,  # rows of A per program (>= 16 for tl.dot)
    BLOCK_N: tl.constexpr,  # rows of B per program (>= 16 for tl.dot)
    BLOCK_K: tl.constexpr,  # K step (>= 32 for int8 MMA)
):
    offs_m = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_m = offs_m < M
    mask_n = offs_n < N
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        mask_k = offs_k < K
        mask_a = mask_m[:, None] & mask_k[None, :]
        mask_b = mask_k[:, None] & mask_n[None, :]
        a = tl.load(a_ptr + offs_m[:, None] * K + offs_k[None, :], mask=mask_a, other=0)
        b = tl.load(b_ptr + offs_n[None, :] * K + offs_k[:, None], mask=mask_b, other=0)  # (BLOCK_K, BLOCK_N)
        # sign as int8; 0 outside the matrix (a masked 0 would otherwise read +1; zeroing one
        # operand would do, both are zeroed so that neither relies on the other)
        a_sign = tl.where(mask_a, tl.where(_nonnegative(a), 1, -1), 0).to(tl.int8)
        b_sign = tl.where(mask_b, tl.where(_nonnegative(b), 1, -1), 0).to(tl.int8)
        acc = tl.dot(a_sign, b_sign, acc, out_dtype=tl.int32)
    tl.store(out_ptr + offs_m[:, None] * N + offs_n[None, :], acc, mask=mask_m[:, None] & mask_n[None, :])


# --------------------------------------------------------------------------- block sizes

# Under the interpreter every program is a Python loop: few, small blocks, and no autotuning.
_INTERPRETED = runs_interpreted(_xnor_matmul_kernel)  # fixed when the kernels were defined
_INTERPRETER_BLOCKS = {
    "pack": dict(BLOCK=64),
    "xnor": dict(BLOCK_M=16, BLOCK_N=16),
    "conv": dict(BLOCK_P=32, BLOCK_O=16),
    "tc": dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=32),
}


def _xnor_matmul_configs() -> list[triton.Config]:
    """Autotune candidates of the XNOR GEMM (keyed on M, N, W); one fixed config under the interpreter."""
    if _INTERPRETED:
        return [triton.Config(_INTERPRETER_BLOCKS["xnor"], num_warps=1)]
    return [
        triton.Config(dict(BLOCK_M=bm, BLOCK_N=bn), num_warps=warps, num_stages=stages)
        for bm, bn, warps in ((16, 64, 2), (32, 32, 2), (64, 64, 4), (128, 64, 4), (64, 128, 4), (128, 128, 8))
        for stages in (2, 3)
    ]


def _sign_matmul_tc_configs() -> list[triton.Config]:
    """Autotune candidates of the int8 tensor-core GEMM (keyed on M, N, K); BLOCK_K >= 32 for int8 MMA."""
    if _INTERPRETED:
        return [triton.Config(_INTERPRETER_BLOCKS["tc"], num_warps=1)]
    return [
        triton.Config(dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk), num_warps=warps, num_stages=stages)
        for bm, bn, bk, warps, stages in (
            (16, 64, 128, 4, 4),  # small M (batch of a few samples)
            (32, 64, 64, 4, 4),
            (64, 64, 64, 4, 4),
            (128, 128, 64, 8, 3),  # float32 tiles in shared memory: 3 x 256 x 64 x 4 B = 192 KiB
            (64, 128, 64, 4, 3),
        )
    ]


_xnor_matmul_tuned = triton.autotune(configs=_xnor_matmul_configs(), key=["M", "N", "W"])(_xnor_matmul_kernel)
_sign_matmul_tc_tuned = triton.autotune(configs=_sign_matmul_tc_configs(), key=["M", "N", "K"])(_sign_matmul_tc_kernel)


def _blocks(name: str, cuda_blocks: dict) -> dict:
    return _INTERPRETER_BLOCKS[name] if _INTERPRETED else cuda_blocks


# --------------------------------------------------------------------------- launchers


def _check_sign_tensor(t: torch.Tensor, name: str, kernel) -> None:
    check_device(t, name, kernel)
    if t.dtype not in _SIGN_DTYPES:
        raise TypeError(
            f"{name}: expected a float16/bfloat16/float32/float64 or int8 tensor of signs, got dtype {t.dtype}")


def _check_same_device(first: torch.Tensor, first_name: str, other: torch.Tensor, other_name: str) -> None:
    if other.device != first.device:
        raise ValueError(
            f"{other_name}: expected a tensor on {first.device} (the device of {first_name}), got one on {other.device}")


def pack_signs(x: torch.Tensor, dim: int = -1) -> tuple[torch.Tensor, int]:
    """Pack the signs of ``x`` along ``dim`` into int32 words (``x >= 0`` -> bit 1, else bit 0).

    Element ``k`` goes to word ``k // 32``, bit ``k % 32``, least significant bit first; padding
    bits 0. Returns ``(packed, K)`` with ``packed`` contiguous, shaped like ``x`` with the packed
    dimension of length K replaced by ``ceil(K / 32)``. ``x`` may have any layout (a
    non-contiguous ``x`` is read through a contiguous copy); float dtypes or int8.
    """
    _check_sign_tensor(x, "x", _pack_signs_kernel)
    if x.dim() == 0:
        raise ValueError("x: expected at least one dimension to pack along, got a 0-dim tensor")
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim: expected a dimension of the {x.dim()}-D tensor x, got {dim}")
    dim = dim % x.dim()
    x = x.contiguous()
    k = x.shape[dim]
    n_words_per_row = math.ceil(k / WORD_BITS)
    inner = math.prod(x.shape[dim + 1:])
    out = torch.empty(*x.shape[:dim], n_words_per_row, *x.shape[dim + 1:], dtype=torch.int32, device=x.device)
    if out.numel() == 0:
        return out, k
    blocks = _blocks("pack", dict(BLOCK=128))
    grid = (triton.cdiv(out.numel(), blocks["BLOCK"]),)
    _pack_signs_kernel[grid](x, out, n_words=out.numel(), K=k, W=n_words_per_row, INNER=inner, **blocks)
    return out, k


def xnor_matmul(a_packed: torch.Tensor, b_packed: torch.Tensor, k: int) -> torch.Tensor:
    """``s(A) @ s(B)^T`` from packed A (M, K) and B (N, K), exact, as int32 (M, N).

    ``a_packed`` (M, ceil(K/32)) and ``b_packed`` (N, ceil(K/32)) are int32, contiguous, on one
    device, laid out by :func:`pack_signs`; ``k`` is K. ``out = K - 2 popcount(a XOR b)`` over the
    K sign bits (padding bits are masked).
    """
    for name, t in (("a_packed", a_packed), ("b_packed", b_packed)):
        check_device(t, name, _xnor_matmul_kernel)
        if t.dtype != torch.int32:
            raise TypeError(f"{name}: expected dtype torch.int32 (packed signs), got {t.dtype}")
        if t.dim() != 2:
            raise ValueError(f"{name}: expected a 2-D tensor (rows, words), got shape {tuple(t.shape)}")
        if not t.is_contiguous():
            raise ValueError(f"{name}: expected a contiguous tensor (row-major words), call .contiguous() first")
    _check_same_device(a_packed, "a_packed", b_packed, "b_packed")
    if b_packed.shape[1] != a_packed.shape[1]:
        raise ValueError(f"b_packed: expected {a_packed.shape[1]} words per row (as a_packed), got {b_packed.shape[1]}")
    check_words_for_k(k, a_packed.shape[1], "a_packed")
    m, n, n_words_per_row = a_packed.shape[0], b_packed.shape[0], a_packed.shape[1]
    out = torch.empty(m, n, dtype=torch.int32, device=a_packed.device)
    if out.numel() == 0:
        return out
    if n_words_per_row == 0:
        return out.zero_()

    def grid(meta):
        return (triton.cdiv(m, meta["BLOCK_M"]), triton.cdiv(n, meta["BLOCK_N"]))

    _xnor_matmul_tuned[grid](a_packed, b_packed, out, M=m, N=n, K=k, W=n_words_per_row)
    return out


def xnor_conv2d(x_sign: torch.Tensor, w_sign: torch.Tensor, padding, stride=1) -> torch.Tensor:
    """``conv2d(s(x), s(w))`` with zero padding (padded taps count 0), exact, as int32 (N, O, H_out, W_out).

    ``x_sign`` (N, C, H, W) and ``w_sign`` (O, C, kh, kw): +1/-1 values (any floats: their signs
    are used), any layout, on one device; ``padding`` and ``stride``: an int or a pair. Both are
    packed along C by :func:`pack_signs`, then one program computes a BLOCK_P x BLOCK_O tile of
    (output position, output channel) by popcounts over taps and channel words. Equals
    ``torch.nn.functional.conv2d(s(x), s(w), padding=padding, stride=stride)``.
    """
    for name, t in (("x_sign", x_sign), ("w_sign", w_sign)):
        check_device(t, name, _xnor_conv2d_kernel)
    _check_same_device(x_sign, "x_sign", w_sign, "w_sign")
    check_conv2d_args(x_sign, w_sign, padding, stride)
    (pad_h, pad_w), (stride_h, stride_w) = as_pair(padding, "padding"), as_pair(stride, "stride")
    n, c, h, w = x_sign.shape
    o, _, kh, kw = w_sign.shape
    h_out, w_out = conv2d_output_size(h, w, kh, kw, padding, stride)
    x_packed, _ = pack_signs(x_sign, dim=1)  # (N, CW, H, W)
    w_packed, _ = pack_signs(w_sign, dim=1)  # (O, CW, kh, kw)
    out = torch.empty(n, o, h_out, w_out, dtype=torch.int32, device=x_sign.device)
    if out.numel() == 0:
        return out
    blocks = _blocks("conv", dict(BLOCK_P=64, BLOCK_O=32))
    n_positions = n * h_out * w_out
    grid = (triton.cdiv(n_positions, blocks["BLOCK_P"]), triton.cdiv(o, blocks["BLOCK_O"]))
    _xnor_conv2d_kernel[grid](
        x_packed, w_packed, out, n_positions=n_positions, O=o, H=h, W=w, H_OUT=h_out, W_OUT=w_out,
        C=c, CW=x_packed.shape[1], KH=kh, KW=kw, STRIDE_H=stride_h, STRIDE_W=stride_w,
        PAD_H=pad_h, PAD_W=pad_w, **blocks)
    return out


def sign_matmul_tc(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``s(A) @ s(B)^T`` on tensor cores (int8 x int8 -> int32), exact, as int32 (M, N).

    ``a`` (M, K) and ``b`` (N, K): contiguous, float16/bfloat16/float32/float64 or int8, on one
    device; values +1/-1 (any: their signs are used, converted to int8 inside the kernel). Exact
    for any K < 2**31; the interpreter multiplies int8 in integers too, so CPU tests check the
    same arithmetic.
    """
    for name, t in (("a", a), ("b", b)):
        _check_sign_tensor(t, name, _sign_matmul_tc_kernel)
        if t.dim() != 2:
            raise ValueError(f"{name}: expected a 2-D tensor (rows, K), got shape {tuple(t.shape)}")
        if not t.is_contiguous():
            raise ValueError(f"{name}: expected a contiguous (row-major) tensor, call .contiguous() first")
    _check_same_device(a, "a", b, "b")
    if b.shape[1] != a.shape[1]:
        raise ValueError(f"b: expected {a.shape[1]} columns (K, as a), got {b.shape[1]}")
    m, k = a.shape
    n = b.shape[0]
    out = torch.empty(m, n, dtype=torch.int32, device=a.device)
    if out.numel() == 0:
        return out
    if k == 0:
        return out.zero_()

    def grid(meta):
        return (triton.cdiv(m, meta["BLOCK_M"]), triton.cdiv(n, meta["BLOCK_N"]))

    _sign_matmul_tc_tuned[grid](a, b, out, M=m, N=n, K=k)
    return out


# --------------------------------------------------------------------------- ahead-of-time compilation

def compile_cases() -> list[dict]:
    """Launch configurations for ``rramk.kernels.compile_for_gpu``: every autotune candidate of both
    GEMMs at the MNIST hidden layer's K (and the input layer's K for one), every sign dtype of
    packing and of the tensor-core path, and the convolution at the narrow VGG's shapes."""
    cases = []
    dtypes = {"fp32": "*fp32", "bf16": "*bf16", "fp16": "*fp16", "fp64": "*fp64", "int8": "*i8"}
    for name, pointer in dtypes.items():
        cases.append(dict(kernel="_pack_signs_kernel", label=f"x {name}", constexprs=dict(BLOCK=128),
                          signature=dict(x_ptr=pointer, out_ptr="*i32", n_words="i32", K="i32", W="i32",
                                         INNER="i32", BLOCK="constexpr")))
    gemm = dict(M="i32", N="i32")
    for k in (3000, 784):
        for config in _xnor_matmul_tuned.configs if k == 3000 else _xnor_matmul_tuned.configs[:1]:
            constants = dict(K=k, W=-(-k // 32), **config.kwargs)
            cases.append(dict(kernel="_xnor_matmul_kernel", label=f"K={k} " + _config_label(config),
                              constexprs=constants, num_warps=config.num_warps, num_stages=config.num_stages,
                              signature=dict(a_ptr="*i32", b_ptr="*i32", out_ptr="*i32", **gemm,
                                             **{k: "constexpr" for k in constants})))
    for name in ("fp32", "bf16", "int8", "fp16", "fp64"):
        configs = _sign_matmul_tc_tuned.configs if name in ("fp32", "bf16", "int8") else _sign_matmul_tc_tuned.configs[:1]
        for config in configs:
            constants = dict(K=3000, **config.kwargs)
            cases.append(dict(kernel="_sign_matmul_tc_kernel", label=f"{name} K=3000 " + _config_label(config),
                              constexprs=constants, num_warps=config.num_warps, num_stages=config.num_stages,
                              signature=dict(a_ptr=dtypes[name], b_ptr=dtypes[name], out_ptr="*i32", **gemm,
                                             **{k: "constexpr" for k in constants})))
    for c in (48, 96):  # cifar10_vgg(width=1/8) and (width=1/4): 3x3, stride 1, zero padding 1
        constants = dict(C=c, CW=-(-c // 32), KH=3, KW=3, STRIDE_H=1, STRIDE_W=1, PAD_H=1, PAD_W=1, BLOCK_P=64,
                         BLOCK_O=32)
        cases.append(dict(kernel="_xnor_conv2d_kernel", label=f"C={c} 3x3 pad 1", constexprs=constants,
                          signature=dict(x_ptr="*i32", w_ptr="*i32", out_ptr="*i32", n_positions="i32", O="i32",
                                         H="i32", W="i32", H_OUT="i32", W_OUT="i32",
                                         **{k: "constexpr" for k in constants})))
    return cases


def _config_label(config) -> str:
    blocks = "x".join(str(v) for v in config.kwargs.values())
    return f"{blocks} w{config.num_warps} s{config.num_stages}"
