"""Argument checks of the weak-RESET launchers, shared by the Triton kernels and the C kernels.

``rramk.kernels.weak_reset`` / ``weak_reset_adam`` (Triton) and ``rramk.kernels.native`` (C) refuse
the same inputs with the same messages through these functions. Imports neither Triton nor anything
of rramk but the stream and state-layout constants, so the C path runs where Triton is absent
(macOS, Windows): the twin of ``xnor_args``.
"""

from __future__ import annotations

import torch

from rramk.device import streams

__all__ = ["check_flat", "check_state_layout", "counter_words", "model_launch_args"]


def model_launch_args(*, d2d_table: torch.Tensor, rtn_flip: torch.Tensor, pink_taps: torch.Tensor,
                      pink_alpha: float, pink_order: int, pink_on: bool, rtn_on: bool, saturation_on: bool,
                      device: torch.device, family: int = streams.FAMILY_TWO_SLOPES,
                      pair_table: torch.Tensor | None = None) -> tuple[list, dict]:
    """Check the model's tables and turn them into launch arguments (shared with the fused Adam kernel).

    d2d_table float32 (7, S), S a power of two (soft bounds: 7 + POWER_ROWS rows; bidirectional:
    7 + 2 STEP_BITS + 2); rtn_flip float32 (2, RTN_TABLE_SIZE); pink_taps
    float32 (4 * blocks, 4), blocks the Philox blocks of a pink window of ``pink_order`` pulses.
    ``pair_table`` (the d2d_pair knob's (2, 2**10) copula, ``model_tables.pair_table``; None: off): its
    rows go after the D2D table's (the table the kernels get), at flag PAIR_ROW (0: off).
    """
    extra = {streams.FAMILY_TWO_SLOPES: 0, streams.FAMILY_SOFT_BOUNDS: streams.POWER_ROWS,
             streams.FAMILY_BIDIRECTIONAL: 2 * streams.STEP_BITS + 2}
    if family not in extra:
        raise ValueError(f"family: expected 0 (two slopes), 1 (soft bounds) or 2 (bidirectional), got {family!r}")
    blocks = (pink_order + 2) // streams.PINK_BLOCK + 1
    rows = len(streams.D2D_TABLE_ROWS) + extra[family]
    expected = {"d2d_table": (rows, d2d_table.shape[-1]),
                "rtn_flip": (2, streams.RTN_TABLE_SIZE), "pink_taps": (streams.PINK_BLOCK * blocks, streams.PINK_BLOCK)}
    for name, t in (("d2d_table", d2d_table), ("rtn_flip", rtn_flip), ("pink_taps", pink_taps)):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.float32 or tuple(t.shape) != expected[name]:
            raise ValueError(f"{name}: expected a float32 tensor of shape {expected[name]}, got "
                             f"{getattr(t, 'dtype', type(t).__name__)} {tuple(getattr(t, 'shape', ()))}")
        if t.device != device or not t.is_contiguous():
            raise ValueError(f"{name}: expected a contiguous tensor on {device}")
    size = d2d_table.shape[1]
    if size & (size - 1) or size > 1 << streams.D2D_INDEX_BITS:
        raise ValueError(f"d2d_table: expected a power of two of at most {1 << streams.D2D_INDEX_BITS} "
                         f"quantiles per row, got {size}")
    pair_row = 0
    if pair_table is not None:
        if family != streams.FAMILY_TWO_SLOPES or size != streams.D2D_TABLE_SIZE:
            raise ValueError(f"pair_table: the d2d_pair knob needs the two-slope family and {streams.D2D_TABLE_SIZE} "
                             f"quantiles per row, got family {family}, {size}")
        if (not isinstance(pair_table, torch.Tensor) or pair_table.dtype != torch.float32
                or tuple(pair_table.shape) != (2, size) or pair_table.device != device):
            raise ValueError(f"pair_table: expected a float32 tensor of shape (2, {size}) on {device}")
        pair_row, d2d_table = rows, torch.cat([d2d_table, pair_table]).contiguous()
    flags = dict(TABLE_SIZE=size, ORDER=pink_order, N_BLOCKS=blocks, PINK=bool(pink_on), RTN=bool(rtn_on),
                 SATURATION=bool(saturation_on), FAMILY=int(family), PAIR_ROW=pair_row)
    return [d2d_table, rtn_flip, pink_taps, float(pink_alpha)], flags


def check_state_layout(device_state: torch.Tensor, pink: torch.Tensor | None) -> int:
    """Validate dtype, shape, contiguity and device of the (2, N) state tensors (every launcher's, the
    native one's too; ``pink`` None for an operation that reads the state words only); returns N."""
    if device_state.dtype != torch.int32 or device_state.dim() != 2 or device_state.shape[0] != 2:
        raise ValueError(f"device_state: expected an int32 tensor of shape (2, N), got {device_state.dtype} "
                         f"{tuple(device_state.shape)}")
    numel = device_state.shape[1]
    if pink is not None and (pink.dtype != torch.float32 or tuple(pink.shape) != (2, numel)):
        raise ValueError(f"pink: expected a float32 tensor of shape (2, {numel}), got {pink.dtype} {tuple(pink.shape)}")
    tensors = [("device_state", device_state)] + ([("pink", pink)] if pink is not None else [])
    for name, t in tensors:
        if not t.is_contiguous():
            raise ValueError(f"{name}: expected a contiguous tensor (it is updated in place)")
        if t.device != device_state.device:
            raise ValueError(f"{name}: expected a tensor on {device_state.device}, got one on {t.device}")
    if numel >= 2**32:
        raise ValueError(f"device_state: at most 2**32 - 1 synapses (Philox counter c0), got {numel}")
    return numel


def check_flat(tensor: torch.Tensor, name: str, dtype: torch.dtype, numel: int, device: torch.device) -> None:
    if not isinstance(tensor, torch.Tensor) or tensor.dtype != dtype:
        raise ValueError(f"{name}: expected a {dtype} tensor, got {getattr(tensor, 'dtype', type(tensor).__name__)}")
    if tuple(tensor.shape) != (numel,):
        raise ValueError(f"{name}: expected shape ({numel},), got {tuple(tensor.shape)}")
    if not tensor.is_contiguous():
        raise ValueError(f"{name}: expected a contiguous tensor")
    if tensor.device != device:
        raise ValueError(f"{name}: expected a tensor on {device}, got one on {tensor.device}")


def counter_words(update: int) -> tuple[int, int]:
    """The update index's (low, high) 32-bit words as signed int32 values (the kernels' arguments).

    Python ints in [-2**31, 2**31) are typed i32 at launch; an unsigned low word of 2**31 or more
    would be typed i64, which ``tl.philox`` refuses. The kernels bitcast them back to uint32.
    """
    if not (isinstance(update, int) and 0 <= update < 2**63):
        raise ValueError(f"update: expected an integer in [0, 2**63), got {update!r}")
    lo, hi = update & 0xFFFFFFFF, update >> 32
    return (lo - (1 << 32) if lo >= 1 << 31 else lo), hi
