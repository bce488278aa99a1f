"""Fused Triton kernel of the optimizer step: gradient -> Adam moments -> pulses -> device update.

Math: ``rramk.device.weak_reset_adam`` (the PyTorch reference) and MODEL.md section 3. One launch per
binary weight tensor reads the straight-through gradient and the Adam moments, writes the new
moments, turns them into at most max_pulses signed pulses per synapse, applies them to the
pair of devices exactly as ``rramk.kernels.weak_reset`` does, and writes the +1/-1 weights
(int8) that the layer will use.

Bytes per synapse: 4 (g) + 8 (m, v) + 16 (state, pink) read; 8 (m, v) + 16 (state, pink) + 1
(weight) written: 53 B, against ~37 B for a bare update: the Adam part adds memory traffic,
not Philox work.

Exactness: float32 in the reference's order, sqrt_rn and div_rn (IEEE, as the reference's
correctly rounded sqrt and division), round half to even, no contracted multiply-add.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .weak_reset import GPU_BLOCK, MODEL_SIGNATURE, _apply_pulses, block_size, check_state, model_cases
from .weak_reset_args import check_flat, counter_words, model_launch_args


@triton.jit
def _round_half_even(x):
    """Nearest integer, ties to even (as torch.round), for |x| < 2**22."""
    r = tl.floor(x)
    diff = x - r
    odd = (r - 2.0 * tl.floor(r * 0.5)) != 0.0
    return tl.where(diff > 0.5, r + 1.0, tl.where(diff == 0.5, tl.where(odd, r + 1.0, r), r))


@triton.jit(do_not_specialize=["seed", "update_lo", "update_hi"])  # new values every call: no recompilation
def _weak_reset_adam_kernel(
    grad_ptr,  # float32 (N,): straight-through gradient of the binary weights
    exp_avg_ptr,  # float32 (N,): Adam first moment, updated in place
    exp_avg_sq_ptr,  # float32 (N,): Adam second moment, updated in place
    state_ptr,  # int32 (2, N): packed (t, RTN state), updated in place
    pink_ptr,  # float32 (2, N): pink terms, updated in place
    weights_ptr,  # int8 (N,): output weights
    table_ptr,  # float32 (7, TABLE_SIZE): D2D quantile table (soft bounds: 7 + POWER_ROWS rows)
    rtn_flip_ptr,  # float32 (2, RTN_TABLE_SIZE): P(flip) after n pulses
    taps_ptr,  # float32 (4 * N_BLOCKS, 4): pink taps
    alpha,  # float32: pink scale
    beta1, one_minus_beta1, beta2, one_minus_beta2,  # float32: Adam decays
    bias_correction1, bias_correction2,  # float32: 1 / (1 - beta**k)
    neg_lr_pulses, eps, max_pulses,  # float32
    seed,  # int: Philox key
    update_lo, update_hi,  # int32: update index of the array, low and high words (signed)
    numel,  # int: N
    TABLE_SIZE: tl.constexpr,
    ORDER: tl.constexpr,
    N_BLOCKS: tl.constexpr,
    PINK: tl.constexpr,
    RTN: tl.constexpr,
    SATURATION: tl.constexpr,
    CYCLES: tl.constexpr,  # read the SET cycles (an array that has had a SET)
    FAMILY: tl.constexpr,  # the device family: 0 two slopes (HfOx), 1 soft bounds, 2 bidirectional
    PAIR_ROW: tl.constexpr,  # the d2d_pair knob's row in the table (0: off)
    BLOCK: tl.constexpr,
):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    g = tl.load(grad_ptr + offs, mask=mask, other=0.0)
    m = tl.load(exp_avg_ptr + offs, mask=mask, other=0.0) * beta1 + g * one_minus_beta1
    v = tl.load(exp_avg_sq_ptr + offs, mask=mask, other=0.0) * beta2 + (g * g) * one_minus_beta2
    tl.store(exp_avg_ptr + offs, m, mask=mask)
    tl.store(exp_avg_sq_ptr + offs, v, mask=mask)
    m_hat = m * bias_correction1
    v_hat = v * bias_correction2
    u = tl.div_rn(neg_lr_pulses * m_hat, tl.sqrt_rn(v_hat) + eps)
    n = _round_half_even(tl.minimum(tl.maximum(u, -max_pulses), max_pulses)).to(tl.int32)
    # min/max of a NaN differ (GPU: the other operand, -max_pulses; interpreter: NaN, then INT_MIN): the integer
    # clamp makes both give -max_pulses, and the guard then gives a NaN gradient no pulse on every backend
    limit = (tl.zeros_like(u) + max_pulses).to(tl.int32)
    n = tl.where(u == u, tl.minimum(tl.maximum(n, -limit), limit), 0)
    _apply_pulses(n, offs, mask, numel, seed, update_lo, update_hi, state_ptr, pink_ptr, weights_ptr, weights_ptr,
                  table_ptr, rtn_flip_ptr, taps_ptr, alpha, TABLE_SIZE, ORDER, N_BLOCKS, PINK, RTN, SATURATION,
                  False, CYCLES, FAMILY, PAIR_ROW)


def weak_reset_adam_step(grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
                         device_state: torch.Tensor, pink: torch.Tensor, weights: torch.Tensor, *,
                         seed: int, update: int, scalars: dict, cycles: bool = False, **model) -> None:
    """One fused step in one launch, in place (kernel of ``rramk.device.weak_reset_adam.weak_reset_adam_step``).

    grad, exp_avg, exp_avg_sq: float32 (N,) (moments updated in place); device_state int32 (2, N)
    and pink float32 (2, N) updated in place; weights int8 (N,) written; update: 0-based update
    index of the array; ``scalars``: the step's float32 values {beta1, one_minus_beta1, beta2,
    one_minus_beta2, bias_correction1, bias_correction2, neg_lr_pulses, eps, max_pulses}
    (``rramk.device.weak_reset_adam.adam_scalars(...).as_floats()``); ``model``: the tables
    and flags of ``rramk.kernels.weak_reset.model_launch_args``; ``cycles``: read the synapses' SET
    cycles (as the reference's ``cycles``).
    """
    numel = check_state(device_state, pink, _weak_reset_adam_kernel)
    device = device_state.device
    check_flat(grad, "grad", torch.float32, numel, device)
    check_flat(exp_avg, "exp_avg", torch.float32, numel, device)
    check_flat(exp_avg_sq, "exp_avg_sq", torch.float32, numel, device)
    check_flat(weights, "weights", torch.int8, numel, device)
    tensors, flags = model_launch_args(**model, device=device)
    block = block_size(device)
    _weak_reset_adam_kernel[(triton.cdiv(numel, block),)](
        grad, exp_avg, exp_avg_sq, device_state, pink, weights, *tensors,
        scalars["beta1"], scalars["one_minus_beta1"], scalars["beta2"], scalars["one_minus_beta2"],
        scalars["bias_correction1"], scalars["bias_correction2"], scalars["neg_lr_pulses"], scalars["eps"],
        scalars["max_pulses"], seed, *counter_words(update), numel,
        **flags, CYCLES=bool(cycles), BLOCK=block, enable_fp_fusion=False)


def compile_cases() -> list[dict]:
    """Launch configurations for ``rramk.kernels.compile_for_gpu`` (what :func:`weak_reset_adam_step` can launch)."""
    signature = {"grad_ptr": "*fp32", "exp_avg_ptr": "*fp32", "exp_avg_sq_ptr": "*fp32", "state_ptr": "*i32",
                 "pink_ptr": "*fp32", "weights_ptr": "*i8", **MODEL_SIGNATURE,
                 **{name: "fp32" for name in ("beta1", "one_minus_beta1", "beta2", "one_minus_beta2",
                                              "bias_correction1", "bias_correction2", "neg_lr_pulses", "eps",
                                              "max_pulses")}}
    cases = []
    for label, constexprs in model_cases():
        constants = dict(constexprs, BLOCK=GPU_BLOCK)
        cases.append(dict(kernel="_weak_reset_adam_kernel", label=label,
                          signature={**signature, **{k: "constexpr" for k in constants}}, constexprs=constants,
                          block=GPU_BLOCK, elements_per_program=GPU_BLOCK, options={"enable_fp_fusion": False}))
    return cases
