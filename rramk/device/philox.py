"""Philox4x32-10 in PyTorch: the counter-based generator behind every random number of rramk.

Philox (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11) maps a
64-bit key and a 128-bit counter to 128 random bits with ten rounds of two 32x32->64
multiplications. Because the output is a pure function of (key, counter), a random
number needs no state: rramk keys the generator with the array's seed and names the
draw by its counter (which device, which stream, which pulse or update, see
``rramk.device.streams``). This module gives the same 32-bit words as Triton's
``tl.philox(seed, c0, c1, c2, c3)`` and the same floats as ``tl.rand`` /
``tl.uint_to_uniform_float``, so the PyTorch reference and the Triton kernels draw the
same numbers.

Words are held in int64 tensors (values in [0, 2**32)): PyTorch has no complete uint32
arithmetic, and every product below stays under 2**49, so nothing overflows.
"""

from __future__ import annotations

import torch

MASK32 = 0xFFFFFFFF
ROUND_MULTIPLIER_A = 0xD2511F53
ROUND_MULTIPLIER_B = 0xCD9E8D57
KEY_INCREMENT_A = 0x9E3779B9  # golden ratio
KEY_INCREMENT_B = 0xBB67AE85  # sqrt(3) - 1
ROUNDS = 10
# Triton's uint_to_uniform_float: the largest float32 scale with (2**31 - 1) * scale < 1.
UNIFORM_SCALE = 4.6566127342e-10


def split_seed(seed):
    """The Philox key (k0, k1) of a 64-bit seed, as Triton forms it: (low word, high word).

    ``seed`` is a Python int in [0, 2**63) or a 0-dim int64 tensor (as compiled code passes it,
    so that a new seed does not trigger a recompilation).
    """
    if isinstance(seed, torch.Tensor):
        if seed.dtype != torch.int64 or seed.dim() != 0:
            raise ValueError(f"seed: expected a 0-dim int64 tensor, got dtype {seed.dtype} with shape {tuple(seed.shape)}")
        return seed & MASK32, (seed >> 32) & MASK32
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed: expected a Python int, got {type(seed).__name__}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed: expected an integer in [0, 2**63), got {seed}")
    return seed & MASK32, (seed >> 32) & MASK32


def _mulhilo(a: torch.Tensor, multiplier: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(high, low) 32-bit words of a * multiplier, for a in [0, 2**32) and a 32-bit constant.

    The constant is split into 16-bit halves so that each partial product stays below 2**48.
    """
    high_half, low_half = multiplier >> 16, multiplier & 0xFFFF
    product_low = a * low_half
    product_high = a * high_half
    low = (product_low + ((product_high & 0xFFFF) << 16)) & MASK32
    high = (product_high + (product_low >> 16)) >> 16
    return high, low


def philox4x32(seed: int, c0, c1, c2, c3, rounds: int = ROUNDS):
    """Four 32-bit words (int64 tensors) of Philox4x32-``rounds`` for key ``seed`` and counter (c0..c3).

    The counters are int64 tensors or Python ints in [0, 2**32), broadcast together. The key
    words are (seed mod 2**32, seed div 2**32), as in ``tl.philox(seed, c0, c1, c2, c3)``.
    """
    k0, k1 = split_seed(seed)
    tensors = [c for c in (c0, c1, c2, c3) if isinstance(c, torch.Tensor)]
    if not tensors:
        raise TypeError("philox4x32: at least one counter must be a tensor")
    like = tensors[0]
    c0, c1, c2, c3 = (
        c.to(torch.int64) if isinstance(c, torch.Tensor) else torch.tensor(c, dtype=torch.int64, device=like.device)
        for c in (c0, c1, c2, c3)
    )
    for _ in range(rounds):
        high_b, low_b = _mulhilo(c2, ROUND_MULTIPLIER_B)
        high_a, low_a = _mulhilo(c0, ROUND_MULTIPLIER_A)
        c0, c1, c2, c3 = high_b ^ c1 ^ k0, low_b, high_a ^ c3 ^ k1, low_a
        k0 = (k0 + KEY_INCREMENT_A) & MASK32
        k1 = (k1 + KEY_INCREMENT_B) & MASK32
    return c0, c1, c2, c3


def uniform_from_bits(bits: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A float in [0, 1) from a 32-bit word, bit-identical to Triton's ``uint_to_uniform_float``.

    The word is read as a signed int32 x, folded to x' = x if x >= 0 else -x - 1 (31 bits),
    converted to float32 and multiplied by UNIFORM_SCALE in float32. ``dtype=float64``
    returns those same float32 values, widened exactly.
    """
    # int32 x < 0 folds to -x - 1 = 2**32 - 1 - bits = bits ^ MASK32 (bits >= 2**31 as an unsigned word)
    folded = torch.where(bits >= 2**31, bits ^ MASK32, bits)
    uniform = folded.to(torch.float32) * torch.tensor(UNIFORM_SCALE, dtype=torch.float32, device=bits.device)
    return uniform.to(dtype)


def uniform_from_16_bits(half: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A float in (0, 1) from a 16-bit integer h: (h + 1/2) / 2**16, exact in float32."""
    return ((half.to(torch.float32) + 0.5) * (1.0 / 65536.0)).to(dtype)
