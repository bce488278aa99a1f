"""Fused Triton kernel of the weak-RESET device update: one launch updates a whole DeviceArray.

Math: ``rramk.device.weak_reset`` (the PyTorch reference and oracle), MODEL.md 1-2. Each program
handles BLOCK synapses: it loads n (int32), both devices' packed state words (t, SET cycle k, RTN
state; ``streams``) and pink terms, regenerates the pulsed device's pink window (5 Philox calls),
both devices' D2D parameters (1 call into the (7, 1024) quantile table, soft bounds (27, 1024); with CYCLES a 2nd, c2 = k,
for c1 and R0) and their RTN step (1 call), and stores the new state, pink terms and int8 weights
W = +1 if ln R_BL >= ln R_BLb. Layout: device_state int32 and pink float32 (2, N), row 0 = BL,
contiguous; pulses int32 (N,); weights int8 (N,). Bytes and operations per synapse:
reports/perf-notes.md. Exactness: the reference's float32 operations in its order, launched with
enable_fp_fusion=False (no multiply-add contracted); everything else is an integer or a table entry.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from rramk.device import streams

from ._launch import check_device
from .weak_reset_args import check_flat, check_state_layout, counter_words, model_launch_args

STREAM_D2D: tl.constexpr = tl.constexpr(streams.STREAM_D2D)
STREAM_PINK: tl.constexpr = tl.constexpr(streams.STREAM_PINK)
STREAM_RTN: tl.constexpr = tl.constexpr(streams.STREAM_RTN)
RTN_TABLE_SIZE: tl.constexpr = tl.constexpr(streams.RTN_TABLE_SIZE)
PULSES_MASK: tl.constexpr = tl.constexpr(streams.PULSES_MASK)
RTN_BIT: tl.constexpr = tl.constexpr(streams.RTN_BIT)
CYCLE_SHIFT: tl.constexpr = tl.constexpr(streams.CYCLE_SHIFT)
MAX_CYCLE: tl.constexpr = tl.constexpr(streams.MAX_CYCLE)
CYCLE_FIELD: tl.constexpr = tl.constexpr(streams.MAX_CYCLE << streams.CYCLE_SHIFT)
# Rows of the D2D table (streams.D2D_TABLE_ROWS) and the bit position of each index.
ROW_M1: tl.constexpr = tl.constexpr(streams.D2D_TABLE_ROWS.index("m1"))
ROW_T_STAR: tl.constexpr = tl.constexpr(streams.D2D_TABLE_ROWS.index("t_star"))
ROW_C1: tl.constexpr = tl.constexpr(streams.D2D_TABLE_ROWS.index("c1"))
ROW_M2: tl.constexpr = tl.constexpr(streams.D2D_TABLE_ROWS.index("m2"))
ROW_LN_R0: tl.constexpr = tl.constexpr(streams.D2D_TABLE_ROWS.index("ln_r0"))
ROW_A_RTN: tl.constexpr = tl.constexpr(streams.D2D_TABLE_ROWS.index("a_rtn"))
ROW_POWER: tl.constexpr = tl.constexpr(len(streams.D2D_TABLE_ROWS))  # soft bounds: 1 - (1 - rate)^(2^b)
POWER_ROWS: tl.constexpr = tl.constexpr(streams.POWER_ROWS)
STEP_BITS: tl.constexpr = tl.constexpr(streams.STEP_BITS)  # bidirectional: rows of each direction's powers
STREAM_STEP: tl.constexpr = tl.constexpr(streams.STREAM_STEP)
assert streams.D2D_PARAMETER_BITS == {"m1": (0, 0), "t_star": (0, 10), "c1": (0, 20), "m2": (1, 0),
                                      "r0": (1, 10), "a_rtn": (1, 20)}, "kernel bit layout out of date"
assert streams.D2D_CYCLE_PARAMETERS == ("c1", "r0"), "kernel cycle parameters out of date"


@triton.jit
def _uniform16(half):
    """(h + 1/2) / 2**16 for a 16-bit integer h (rramk.device.philox.uniform_from_16_bits)."""
    return (half.to(tl.float32) + 0.5) * (1.0 / 65536.0)


@triton.jit
def _d2d_parameters(word_a, word_b, cycle_a, cycle_b, table_ptr, TABLE_SIZE: tl.constexpr, SATURATION: tl.constexpr,
                    FAMILY: tl.constexpr):
    """(m1, t_star, c1, m2, ln_r0, a_rtn) of a device from its two D2D words (cycle 0) and the
    two of its SET cycle (c1, R0), and the lookup table (soft bounds: rate, -, -, g_max, g0, a_rtn)."""
    mask = TABLE_SIZE - 1
    m1 = tl.load(table_ptr + ROW_M1 * TABLE_SIZE + (word_a & mask))
    t_star = tl.load(table_ptr + ROW_T_STAR * TABLE_SIZE + ((word_a >> 10) & mask))
    c1 = tl.load(table_ptr + ROW_C1 * TABLE_SIZE + ((cycle_a >> 20) & mask))
    if SATURATION or FAMILY != 0:  # soft bounds, bidirectional: m2 is g_max
        m2 = tl.load(table_ptr + ROW_M2 * TABLE_SIZE + (word_b & mask))
    else:
        m2 = m1
    ln_r0 = tl.load(table_ptr + ROW_LN_R0 * TABLE_SIZE + ((cycle_b >> 10) & mask))
    a_rtn = tl.load(table_ptr + ROW_A_RTN * TABLE_SIZE + ((word_b >> 20) & mask))
    return m1, t_star, c1, m2, ln_r0, a_rtn


@triton.jit
def _paired_word(a, b, table_ptr, PAIR_ROW: tl.constexpr, TABLE_SIZE: tl.constexpr):
    """BLb's D2D word ``b`` coupled to BL's ``a`` by the d2d_pair knob (rramk.device.weak_reset.paired_words):
    each 10-bit index of b becomes the largest i with z_i <= rho z[index of a] + s z[index of b]."""
    scores = table_ptr + PAIR_ROW * TABLE_SIZE
    rho = tl.load(scores + TABLE_SIZE)
    s = tl.load(scores + TABLE_SIZE + 1)
    mask = TABLE_SIZE - 1
    for shift in tl.static_range(0, 30, 10):
        target = rho * tl.load(scores + ((a >> shift) & mask)) + s * tl.load(scores + ((b >> shift) & mask))
        q = tl.zeros_like(b)
        for k in tl.static_range(1, 11):
            step = (1024 >> k)  # pairing needs TABLE_SIZE = 2**10 (model_launch_args checks)
            q = tl.where(tl.load(scores + q + step) <= target, q + step, q)
        b = (b & ~(mask << shift)) | (q << shift)
    return b


@triton.jit
def _pink_tap(taps_ptr, position: tl.constexpr, shift):
    """The filter tap of window position ``position`` for each block shift (0..3)."""
    tap0 = tl.load(taps_ptr + position * 4 + 0)
    tap1 = tl.load(taps_ptr + position * 4 + 1)
    tap2 = tl.load(taps_ptr + position * 4 + 2)
    tap3 = tl.load(taps_ptr + position * 4 + 3)
    return tl.where(shift == 0, tap0, tl.where(shift == 1, tap1, tl.where(shift == 2, tap2, tap3)))


@triton.jit
def _pink_term(seed, index, side, t, cycle, taps_ptr, alpha, ORDER: tl.constexpr, N_BLOCKS: tl.constexpr):
    """alpha * sum_k b_k u_{t-k} over the Philox blocks of SET cycle ``cycle`` that cover the window
    (reference: pink_term)."""
    oldest = t - ORDER  # int32; the window starts at pulse oldest + 1
    first_block = oldest >> 2  # floor(oldest / 4), also for oldest < 0 (arithmetic shift)
    shift = oldest & 3  # (t - ORDER) mod 4
    acc = tl.zeros(t.shape, dtype=tl.float32)
    for block_offset in tl.static_range(N_BLOCKS):
        block = first_block + block_offset
        counter = tl.maximum(block, 0).to(tl.uint32)
        w0, w1, w2, w3 = tl.philox(seed, index, side + 2 * STREAM_PINK, counter, cycle)  # tensor first: Triton 3.9 interpreter
        happened = block >= 0  # pulses j <= 0 have u_j = 0
        acc = acc + _pink_tap(taps_ptr, block_offset * 4 + 0, shift) * tl.where(happened, tl.uint_to_uniform_float(w0), 0.0)
        acc = acc + _pink_tap(taps_ptr, block_offset * 4 + 1, shift) * tl.where(happened, tl.uint_to_uniform_float(w1), 0.0)
        acc = acc + _pink_tap(taps_ptr, block_offset * 4 + 2, shift) * tl.where(happened, tl.uint_to_uniform_float(w2), 0.0)
        acc = acc + _pink_tap(taps_ptr, block_offset * 4 + 3, shift) * tl.where(happened, tl.uint_to_uniform_float(w3), 0.0)
    return alpha * acc


@triton.jit
def _device_side(d2d_a, d2d_b, cycle_a, cycle_b, flip_word, amplitude_word, word, pink_old, pulses_on_side,
                 fresh_pink, n_signed, step0, step1, alpha, table_ptr, rtn_flip_ptr, TABLE_SIZE: tl.constexpr,
                 RTN: tl.constexpr, SATURATION: tl.constexpr, FAMILY: tl.constexpr):
    """New (state word, pink, ln R) of the devices on one side (reference: weak_reset_update's loop)."""
    m1, t_star, c1, m2, ln_r0, a_rtn = _d2d_parameters(d2d_a, d2d_b, cycle_a, cycle_b, table_ptr, TABLE_SIZE,
                                                       SATURATION, FAMILY)
    t = (word & PULSES_MASK) + pulses_on_side
    state = (word >> RTN_BIT) & 1
    w_rtn = tl.zeros(t.shape, dtype=tl.float32)
    if RTN:
        p_flip = tl.load(rtn_flip_ptr + state * RTN_TABLE_SIZE + tl.minimum(pulses_on_side, RTN_TABLE_SIZE - 1))
        flips = tl.uint_to_uniform_float(flip_word) < p_flip
        state = state ^ flips.to(tl.int32)
        amplitude = _uniform16(amplitude_word & 0xFFFF) * (_uniform16(amplitude_word >> 16) * a_rtn)
        w_rtn = tl.where(state == 1, amplitude, 0.0)
    tf = t.to(tl.float32)
    if FAMILY == 2:  # bidirectional (reference: weak_reset.bidirectional_step); m1 rate_up, t_star rate_down,
        up = n_signed > 0  # c1 g_min, m2 g_max, ln_r0 g0
        mask = TABLE_SIZE - 1
        c = tl.zeros(t.shape, dtype=tl.float32)
        for b in tl.static_range(STEP_BITS):
            e_up = tl.load(table_ptr + (ROW_POWER + b) * TABLE_SIZE + (d2d_a & mask))
            e_down = tl.load(table_ptr + (ROW_POWER + STEP_BITS + b) * TABLE_SIZE + ((d2d_a >> 10) & mask))
            c = tl.where(((pulses_on_side >> b) & 1) == 1, c + tl.where(up, e_up, e_down) * (1.0 - c), c)
        s_up = tl.load(table_ptr + (ROW_POWER + 2 * STEP_BITS) * TABLE_SIZE + (d2d_b & mask))
        s_down = tl.load(table_ptr + (ROW_POWER + 2 * STEP_BITS + 1) * TABLE_SIZE + ((cycle_a >> 20) & mask))
        target = tl.where(up, s_up - ln_r0, s_down - ln_r0)
        if SATURATION:
            step = (target - pink_old) * c
        else:
            step = (target * tl.where(up, m1, t_star)) * pulses_on_side.to(tl.float32)
        noise = (alpha * ((tl.uint_to_uniform_float(step0) + tl.uint_to_uniform_float(step1)) - 1.0)) * tl.abs(step)
        moved = pink_old + (step + noise)
        if SATURATION:
            above = tl.where(moved > c1 - ln_r0, moved, c1 - ln_r0)
            fresh_pink = tl.where(above < m2 - ln_r0, above, m2 - ln_r0)
        else:
            fresh_pink = moved
    w_pink = tl.where(pulses_on_side > 0, fresh_pink, pink_old)
    if FAMILY == 2:
        w_mean = tl.zeros(t.shape, dtype=tl.float32)
    elif FAMILY == 1:  # soft bounds (reference: weak_reset.soft_bounds_mean)
        window = m2 - ln_r0
        c = tl.zeros(t.shape, dtype=tl.float32)
        for b in tl.static_range(POWER_ROWS):
            e = tl.load(table_ptr + (ROW_POWER + b) * TABLE_SIZE + (d2d_a & (TABLE_SIZE - 1)))
            c = tl.where(((t >> b) & 1) == 1, c + e * (1.0 - c), c)
        if SATURATION:
            w_mean = window * c
        else:
            w_mean = (window * m1) * tf
    else:
        w_mean = tl.where(tf < t_star, m1 * tf + c1, m2 * tf + (t_star * (m1 - m2) + c1))
    log_r = ln_r0 + ((w_mean + w_pink) + w_rtn)
    return (word & CYCLE_FIELD) | t | (state << RTN_BIT), w_pink, log_r


@triton.jit
def _apply_pulses(n, offs, mask, numel, seed, update_lo, update_hi, state_ptr, pink_ptr, weights_ptr, log_r_ptr,
                  table_ptr, rtn_flip_ptr, taps_ptr, alpha, TABLE_SIZE: tl.constexpr, ORDER: tl.constexpr,
                  N_BLOCKS: tl.constexpr, PINK: tl.constexpr, RTN: tl.constexpr, SATURATION: tl.constexpr,
                  STORE_LOG_R: tl.constexpr, CYCLES: tl.constexpr, FAMILY: tl.constexpr, PAIR_ROW: tl.constexpr):
    """Apply int32 pulse counts ``n`` to the synapses ``offs``: the body shared by both kernels.

    ``update_lo``/``update_hi`` are the update index's 32-bit words passed as int32 (so that an
    index of 2**31 or more types and compiles like any other); the counter uses their bits.
    CYCLES: read each synapse's SET cycle (from its BL word) for c1, R0 and the pink stream;
    without, every cycle is 0 (an array never SET: no extra Philox call).
    """
    index = offs.to(tl.uint32)
    word_bl = tl.load(state_ptr + offs, mask=mask, other=0)
    word_blb = tl.load(state_ptr + numel + offs, mask=mask, other=0)
    pink_bl = tl.load(pink_ptr + offs, mask=mask, other=0.0)
    pink_blb = tl.load(pink_ptr + numel + offs, mask=mask, other=0.0)
    if FAMILY == 2:  # bidirectional: BL takes |n| pulses of n's sign, BLb (the reference) none
        n_bl = tl.abs(n)
        n_blb = tl.zeros_like(n)
    else:
        n_bl = tl.maximum(n, 0)
        n_blb = tl.maximum(-n, 0)
    # one pink window per synapse: that of the device the update pulses (BL if n >= 0)
    pulsed_side = (n < 0).to(tl.uint32)
    t_pulsed = tl.where(n < 0, (word_blb & PULSES_MASK) + n_blb, (word_bl & PULSES_MASK) + n_bl)
    if CYCLES:
        cycle = ((word_bl >> CYCLE_SHIFT) & MAX_CYCLE).to(tl.uint32)
    else:
        cycle = tl.zeros(n.shape, dtype=tl.uint32)
    if PINK and FAMILY != 2:  # the bidirectional family's float is its state: no pink window
        fresh_pink = _pink_term(seed, index, pulsed_side, t_pulsed, cycle, taps_ptr, alpha, ORDER, N_BLOCKS)
    else:
        fresh_pink = tl.zeros(n.shape, dtype=tl.float32)
    d0, d1, d2, d3 = tl.philox(seed, index, 2 * STREAM_D2D, 0, 0)  # both devices' D2D parameters
    if PAIR_ROW != 0:  # the d2d_pair knob: BLb's indices coupled to BL's
        d2 = _paired_word(d0, d2, table_ptr, PAIR_ROW, TABLE_SIZE)
        d3 = _paired_word(d1, d3, table_ptr, PAIR_ROW, TABLE_SIZE)
    if CYCLES:
        k0, k1, k2, k3 = tl.philox(seed, index, 2 * STREAM_D2D, cycle, 0)  # c1, R0 of the SET cycle
        if PAIR_ROW != 0:
            k2 = _paired_word(k0, k2, table_ptr, PAIR_ROW, TABLE_SIZE)
            k3 = _paired_word(k1, k3, table_ptr, PAIR_ROW, TABLE_SIZE)
    else:
        k0, k1, k2, k3 = d0, d1, d2, d3
    if RTN:
        r0, r1, r2, r3 = tl.philox(seed, index, 2 * STREAM_RTN, update_lo.to(tl.uint32, bitcast=True),
                                   update_hi.to(tl.uint32, bitcast=True))  # both devices' RTN draws
    else:
        r0, r1, r2, r3 = d0, d1, d2, d3  # unused
    s0, s1 = d0, d1  # the BL device's step noise (bidirectional), else unused
    if FAMILY == 2:
        s0, s1, s2, s3 = tl.philox(seed, index, 2 * STREAM_STEP, update_lo.to(tl.uint32, bitcast=True),
                                   update_hi.to(tl.uint32, bitcast=True))
    word_bl, pink_bl, log_r_bl = _device_side(d0, d1, k0, k1, r0, r2, word_bl, pink_bl, n_bl, fresh_pink, n, s0, s1,
                                              alpha, table_ptr, rtn_flip_ptr, TABLE_SIZE, RTN, SATURATION, FAMILY)
    word_blb, pink_blb, log_r_blb = _device_side(d2, d3, k2, k3, r1, r3, word_blb, pink_blb, n_blb, fresh_pink,
                                                 tl.zeros_like(n), s0, s1, alpha, table_ptr, rtn_flip_ptr,
                                                 TABLE_SIZE, RTN, SATURATION, FAMILY)
    tl.store(state_ptr + offs, word_bl, mask=mask)
    tl.store(state_ptr + numel + offs, word_blb, mask=mask)
    tl.store(pink_ptr + offs, pink_bl, mask=mask)
    tl.store(pink_ptr + numel + offs, pink_blb, mask=mask)
    tl.store(weights_ptr + offs, tl.where(log_r_bl >= log_r_blb, 1, -1).to(tl.int8), mask=mask)
    if STORE_LOG_R:  # ln R of both devices, as the reference returns it (tests, characterization)
        tl.store(log_r_ptr + offs, log_r_bl, mask=mask)
        tl.store(log_r_ptr + numel + offs, log_r_blb, mask=mask)


@triton.jit(do_not_specialize=["seed", "update_lo", "update_hi"])  # new values every call: no recompilation
def _weak_reset_update_kernel(
    pulses_ptr,  # int32 (N,): signed pulse counts
    state_ptr,  # int32 (2, N): packed (t, RTN state), updated in place
    pink_ptr,  # float32 (2, N): pink terms, updated in place
    weights_ptr,  # int8 (N,): output weights
    log_r_ptr,  # float32 (2, N): output ln R (written when STORE_LOG_R)
    table_ptr,  # float32 (7, TABLE_SIZE): D2D quantile table (soft bounds: 7 + POWER_ROWS rows)
    rtn_flip_ptr,  # float32 (2, RTN_TABLE_SIZE): P(flip) after n pulses from state 0 / 1
    taps_ptr,  # float32 (4 * N_BLOCKS, 4): pink taps per window position and block shift
    alpha,  # float32: pink scale
    seed,  # int: Philox key
    update_lo,  # int32: update index, low 32 bits (as a signed word)
    update_hi,  # int32: update index, high 32 bits
    numel,  # int: N
    TABLE_SIZE: tl.constexpr,
    ORDER: tl.constexpr,
    N_BLOCKS: tl.constexpr,
    PINK: tl.constexpr,
    RTN: tl.constexpr,
    SATURATION: tl.constexpr,
    STORE_LOG_R: tl.constexpr,
    CYCLES: tl.constexpr,  # read the SET cycles (an array that has had a SET)
    FAMILY: tl.constexpr,  # the device family: 0 two slopes (HfOx), 1 soft bounds, 2 bidirectional
    PAIR_ROW: tl.constexpr,  # the d2d_pair knob's row in the table (0: off)
    BLOCK: tl.constexpr,
):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    n = tl.load(pulses_ptr + offs, mask=mask, other=0)
    _apply_pulses(n, offs, mask, numel, seed, update_lo, update_hi, state_ptr, pink_ptr, weights_ptr, log_r_ptr,
                  table_ptr, rtn_flip_ptr, taps_ptr, alpha, TABLE_SIZE, ORDER, N_BLOCKS, PINK, RTN, SATURATION,
                  STORE_LOG_R, CYCLES, FAMILY, PAIR_ROW)


def block_size(device: torch.device) -> int:
    """Synapses per program: small under the interpreter (numpy per op), large on a GPU."""
    return 128 if device.type == "cpu" else GPU_BLOCK


def check_state(device_state: torch.Tensor, pink: torch.Tensor, kernel) -> int:
    """Validate the (2, N) state tensors for a launch of ``kernel``; returns N."""
    check_device(device_state, "device_state", kernel)
    return check_state_layout(device_state, pink)


def weak_reset_update(device_state: torch.Tensor, pink: torch.Tensor, pulses: torch.Tensor, weights: torch.Tensor, *,
                      seed: int, update: int, log_r: torch.Tensor | None = None, cycles: bool = False,
                      **model) -> None:
    """Apply signed pulse counts in one launch, in place (kernel of ``rramk.device.weak_reset.weak_reset_update``).

    device_state int32 (2, N) and pink float32 (2, N) are updated in place; weights int8 (N,) is
    written; pulses int32 (N,); update: 0-based index of this update; seed in [0, 2**63);
    ``log_r``: optional float32 (2, N) output for ln R of every device, as the reference returns it;
    ``cycles``: read the synapses' SET cycles (as the reference's ``cycles``);
    ``model``: the tables and flags of :func:`model_launch_args`
    (``rramk.device.model_tables.kernel_arguments(config, device)`` makes them from a config).
    """
    numel = check_state(device_state, pink, _weak_reset_update_kernel)
    check_flat(pulses, "pulses", torch.int32, numel, device_state.device)
    check_flat(weights, "weights", torch.int8, numel, device_state.device)
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed: expected an int in [0, 2**63), got {seed}")
    tensors, flags = model_launch_args(**model, device=device_state.device)
    block = block_size(device_state.device)
    grid = (triton.cdiv(numel, block),)
    if log_r is not None:
        check_flat(log_r.view(-1), "log_r", torch.float32, 2 * numel, device_state.device)
    _weak_reset_update_kernel[grid](
        pulses, device_state, pink, weights, weights if log_r is None else log_r, *tensors, seed,
        *counter_words(update), numel, **flags, STORE_LOG_R=log_r is not None, CYCLES=bool(cycles), BLOCK=block,
        enable_fp_fusion=False)


def check_available(device: torch.device) -> None:
    """Raise a clear error unless the kernel can run on ``device`` (CUDA, or CPU under the interpreter)."""
    check_device(torch.empty(0, device=device), "device", _weak_reset_update_kernel)


# ------------------------------------------------------------------ ahead-of-time compilation

MODEL_SIGNATURE = {"table_ptr": "*fp32", "rtn_flip_ptr": "*fp32", "taps_ptr": "*fp32", "alpha": "fp32",
                   "seed": "i64", "update_lo": "i32", "update_hi": "i32", "numel": "i64"}
GPU_BLOCK = 512


def model_cases():
    """(label, constexprs) of the model structures compiled ahead of time: the 8 imperfection flag
    combinations at the published filter order, the extreme filter orders (1, 64), the published
    model reading SET cycles (an array that has had a refresh), with the d2d_pair knob, and soft bounds and
    bidirectional with and without their bounds."""
    cases = []
    for pink in (True, False):
        for rtn in (True, False):
            for saturation in (True, False):
                flags = dict(PINK=pink, RTN=rtn, SATURATION=saturation)
                label = ",".join(k.lower() for k, v in flags.items() if v) or "none"
                cases.append((label, dict(TABLE_SIZE=1024, ORDER=15, N_BLOCKS=5, **flags, CYCLES=False, FAMILY=0,
                                                  PAIR_ROW=0)))
    for order in (1, 64):
        cases.append((f"all,order{order}", dict(TABLE_SIZE=1024, ORDER=order, N_BLOCKS=(order + 2) // 4 + 1,
                                                PINK=True, RTN=True, SATURATION=True, CYCLES=False, FAMILY=0,
                                                PAIR_ROW=0)))
    cases.append(("all,cycles", dict(TABLE_SIZE=1024, ORDER=15, N_BLOCKS=5, PINK=True, RTN=True, SATURATION=True,
                                     CYCLES=True, FAMILY=0, PAIR_ROW=0)))
    cases.append(("all,cycles,pair", dict(TABLE_SIZE=1024, ORDER=15, N_BLOCKS=5, PINK=True, RTN=True, SATURATION=True,
                                          CYCLES=True, FAMILY=0, PAIR_ROW=7)))  # the d2d_pair knob
    for family, name in ((1, "soft_bounds"), (2, "bidirectional")):  # with and without the bounds (order 1)
        for saturation in (True, False):
            cases.append((f"{name}{'' if saturation else ',no_bound'}",
                          dict(TABLE_SIZE=1024, ORDER=1, N_BLOCKS=1, PINK=True, RTN=True, SATURATION=saturation,
                               CYCLES=False, FAMILY=family, PAIR_ROW=0)))
    return cases


def compile_cases() -> list[dict]:
    """Launch configurations for ``rramk.kernels.compile_for_gpu`` (what :func:`weak_reset_update` can launch on a GPU)."""
    signature = {"pulses_ptr": "*i32", "state_ptr": "*i32", "pink_ptr": "*fp32", "weights_ptr": "*i8",
                 "log_r_ptr": "*fp32", **MODEL_SIGNATURE}
    cases = []
    for label, constexprs in model_cases():
        for store_log_r in (False, True):
            constants = dict(constexprs, STORE_LOG_R=store_log_r, BLOCK=GPU_BLOCK)
            cases.append(dict(kernel="_weak_reset_update_kernel", label=label + (",log_r" if store_log_r else ""),
                              signature={**signature, **{k: "constexpr" for k in constants}}, constexprs=constants,
                              block=GPU_BLOCK, elements_per_program=GPU_BLOCK, options={"enable_fp_fusion": False}))
    return cases
