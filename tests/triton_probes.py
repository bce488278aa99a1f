"""Tiny Triton kernels that expose tl.philox and tl.rand to the tests."""

import torch
import triton
import triton.language as tl


@triton.jit
def _philox_kernel(c0_ptr, c1_ptr, c2_ptr, c3_ptr, out_ptr, seed, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    c0 = tl.load(c0_ptr + offs, mask=mask).to(tl.uint32)
    c1 = tl.load(c1_ptr + offs, mask=mask).to(tl.uint32)
    c2 = tl.load(c2_ptr + offs, mask=mask).to(tl.uint32)
    c3 = tl.load(c3_ptr + offs, mask=mask).to(tl.uint32)
    w0, w1, w2, w3 = tl.philox(seed, c0, c1, c2, c3)
    tl.store(out_ptr + offs, w0.to(tl.int64) & 0xFFFFFFFF, mask=mask)
    tl.store(out_ptr + n + offs, w1.to(tl.int64) & 0xFFFFFFFF, mask=mask)
    tl.store(out_ptr + 2 * n + offs, w2.to(tl.int64) & 0xFFFFFFFF, mask=mask)
    tl.store(out_ptr + 3 * n + offs, w3.to(tl.int64) & 0xFFFFFFFF, mask=mask)


@triton.jit
def _rand_kernel(offsets_ptr, out_ptr, seed, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(offsets_ptr + offs, mask=mask).to(tl.uint32)
    tl.store(out_ptr + offs, tl.rand(seed, x), mask=mask)


def philox_words(seed: int, counters):
    n = counters[0].numel()
    out = torch.empty(4 * n, dtype=torch.int64, device=counters[0].device)
    c = [x.to(torch.int64).contiguous() for x in counters]
    _philox_kernel[(triton.cdiv(n, 128),)](c[0], c[1], c[2], c[3], out, seed, n, BLOCK=128)
    return out.view(4, n).unbind(0)


def rand_floats(seed: int, offsets):
    n = offsets.numel()
    out = torch.empty(n, dtype=torch.float32, device=offsets.device)
    _rand_kernel[(triton.cdiv(n, 128),)](offsets.contiguous(), out, seed, n, BLOCK=128)
    return out
