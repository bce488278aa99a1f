"""PyTorch reference of the weak-RESET device update (MODEL.md 1-2): the specification in code
and the oracle of the kernels (``rramk.kernels.weak_reset``, the C path), which give its bits.

State of N synapses (flat; dimension 0 is the side: 0 = BL, 1 = BLb), 16 bytes per synapse:

    device_state int32   (2, N)   bits 0-19: RESET pulses t since the last SET; bits 20-30: the
                                  SET cycle k; bit 31: RTN trap state s (``streams``)
    pink         float32 (2, N)   w_pink(t) of each device, kept because only a pulse changes it

The D2D parameters, the pink history and the RTN amplitudes are regenerated from Philox counters
(``streams``). An update with signed pulses n (n > 0: to BL, n < 0: |n| to BLb): (1) each trap
flips with P = pi_s (1 - lambda**n_side); (2) t_side += n_side and the pulsed device's pink term
is recomputed; (3) ln R = ln R0 + ((w_mean(t) + w_pink) + w_rtn), w_rtn = s * v * (v' * A_rtn)
with this update's v, v'; (4) W = +1 if ln R_BL >= ln R_BLb else -1. The SET of a refresh:
:func:`weak_reset_set`. float32 in a fixed order of IEEE-rounded +, -, * and table lookups (no
transcendental, no multiply-add), so every backend computes the same bits; ``dtype=torch.float64``
evaluates the same model in float64.
"""

from __future__ import annotations

import torch

from . import streams
from .config import HfOxWeakReset
from .model_tables import TABLE_ROWS, ModelConstants, model_constants, pink_blocks
from .philox import MASK32, philox4x32, uniform_from_16_bits, uniform_from_bits
from .streams import PULSES_MASK, RTN_BIT, RTN_TABLE_SIZE
# Both devices of a synapse at once: tensors of state are (2, N), dimension 0 = side.
SIDES = (streams.SIDE_BL, streams.SIDE_BLB)


def synapse_index(first, count: int, device) -> torch.Tensor:
    """Flat indices first .. first + count - 1 (the Philox counter c0) as int64."""
    return torch.arange(count, dtype=torch.int64, device=device) + first


def side_index(device) -> torch.Tensor:
    """(2, 1) tensor [[BL], [BLb]]: broadcast against (N,) to address both devices of each synapse."""
    return torch.tensor(SIDES, dtype=torch.int64, device=device).unsqueeze(1)


def d2d_words(seed, index: torch.Tensor, cycle=0):
    """The four words of the D2D call of synapses ``index`` (both devices' parameters) in SET
    cycle ``cycle`` (an int or a tensor broadcast against ``index``; 0: the array's first draw)."""
    if isinstance(cycle, torch.Tensor):
        cycle = cycle.to(torch.int64)
    return philox4x32(seed, index, streams.counter_stream(streams.STREAM_D2D), cycle, 0)


def _side_words(words, side):
    if isinstance(side, int):
        return words[2 * side], words[2 * side + 1]
    return torch.where(side == 0, words[0], words[2]), torch.where(side == 0, words[1], words[3])


PAIR_FIELDS = ((0, 0), (0, 10), (0, 20), (1, 0), (1, 10), (1, 20))  # (word, shift) of every 10-bit D2D index


def paired_words(words, pair_table: torch.Tensor):
    """The D2D ``words`` of both devices with BLb's (words 2 and 3) coupled to BL's (words 0 and 1) by the
    d2d_pair knob (``model_tables.pair_table``): each 10-bit index q_b becomes the largest i with
    z_i <= rho z[q_a] + s z[q_b] (float32: two products, then their sum; a 10-step binary search, as
    the kernels do), every other bit of the words as drawn."""
    scores, rho, s = pair_table[0], pair_table[1][0], pair_table[1][1]
    size = scores.shape[0]
    out = list(words)
    for word, shift in PAIR_FIELDS:
        qa = (words[word] >> shift) & (size - 1)
        qb = (out[2 + word] >> shift) & (size - 1)
        target = rho * scores[qa] + s * scores[qb]
        q = torch.zeros_like(qa)
        step = size // 2
        while step:
            q = torch.where(scores[q + step] <= target, q + step, q)
            step //= 2
        out[2 + word] = (out[2 + word] & ~((size - 1) << shift)) | (q << shift)
    return out


def d2d_parameters(config: HfOxWeakReset, constants: ModelConstants, words, side, cycle_words=None):
    """Parameters {name: tensor} of the devices on ``side`` (an int, or a tensor broadcast against
    the words), from the synapses' D2D ``words``; names TABLE_ROWS.

    Each parameter is the quantile its 10 bits pick (``rramk.device.streams``); with saturation off
    (``constants.saturation`` False), m2 is m1. ``cycle_words``: the D2D words of the synapses'
    SET cycle, which give c1 and R0 (``streams.D2D_CYCLE_PARAMETERS``); default ``words`` (cycle 0).
    """
    table = constants.d2d_table
    if constants.pair_table.numel():  # the d2d_pair knob: BLb's indices coupled to BL's
        words = paired_words(words, constants.pair_table)
        cycle_words = None if cycle_words is None else paired_words(cycle_words, constants.pair_table)
    pair = _side_words(words, side)
    cycle_pair = pair if cycle_words is None else _side_words(cycle_words, side)
    params = {}
    for row, name in enumerate(TABLE_ROWS):
        key = "r0" if name == "ln_r0" else name
        word, shift = streams.D2D_PARAMETER_BITS[key]
        source = cycle_pair if key in streams.D2D_CYCLE_PARAMETERS else pair
        quantile = (source[word] >> shift) & (table.shape[1] - 1)
        params[name] = table[row][quantile]
    mask, row = table.shape[1] - 1, len(TABLE_ROWS)
    if config.FAMILY == streams.FAMILY_SOFT_BOUNDS:  # 1 - (1 - rate)^(2^b), b < POWER_ROWS: the rate's quantile
        quantile = pair[0] & mask
        params.update({f"power_{b}": table[row + b][quantile] for b in range(streams.POWER_ROWS)})
    elif config.FAMILY == streams.FAMILY_BIDIRECTIONAL:  # the rates' powers, the soft targets (``streams``)
        up, down = pair[0] & mask, (pair[0] >> 10) & mask
        bits = streams.STEP_BITS
        params.update({f"up_{b}": table[row + b][up] for b in range(bits)})
        params.update({f"down_{b}": table[row + bits + b][down] for b in range(bits)})
        params["s_up"] = table[row + 2 * bits][pair[1] & mask]
        params["s_down"] = table[row + 2 * bits + 1][(cycle_pair[0] >> 20) & mask]
    else:
        params["m2"] = torch.where(constants.saturation, params["m2"], params["m1"])
    return params


def mean_log_resistance(t: torch.Tensor, m1, t_star, c1, m2) -> torch.Tensor:
    """w_mean(t): two slopes in the log domain, continuous at t_star (MODEL.md 1.1)."""
    t = t.to(m1.dtype)
    return torch.where(t < t_star, m1 * t + c1, m2 * t + (t_star * (m1 - m2) + c1))


def soft_bounds_mean(t: torch.Tensor, params: dict, saturation: torch.Tensor) -> torch.Tensor:
    """w_mean(t) of a soft-bounds device (``rramk.device.soft_bounds``): (g_max - g0) (1 - (1 - rate)^t), or
    with saturation off ((g_max - g0) rate) t. 1 - (1 - rate)^t is composed over the bits b of t, lowest first,
    from the table's e_b = 1 - (1 - rate)^(2^b): c <- c + e_b (1 - c) (exact algebra; each step rounded)."""
    window = params["m2"] - params["ln_r0"]
    t = t.to(torch.int64)
    c = torch.zeros(t.shape, dtype=window.dtype, device=t.device)
    for b in range(streams.POWER_ROWS):
        e = params[f"power_{b}"]
        c = torch.where(((t >> b) & 1) == 1, c + e * (1.0 - c), c)
    return torch.where(saturation, window * c, (window * params["m1"]) * t.to(window.dtype))


def mean_state(config: HfOxWeakReset, constants: ModelConstants, t: torch.Tensor, params: dict) -> torch.Tensor:
    """w_mean(t) of the devices of ``params`` in ``config``'s family (two slopes, soft bounds; bidirectional: 0,
    its state is the stored displacement)."""
    if config.FAMILY == streams.FAMILY_SOFT_BOUNDS:
        return soft_bounds_mean(t, params, constants.saturation)
    if config.FAMILY == streams.FAMILY_BIDIRECTIONAL:
        return torch.zeros(t.shape, dtype=params["m1"].dtype, device=t.device)
    return mean_log_resistance(t, params["m1"], params["t_star"], params["c1"], params["m2"])


def pink_term(config: HfOxWeakReset, constants: ModelConstants, seed, index: torch.Tensor, side,
              t: torch.Tensor, cycle=0) -> torch.Tensor:
    """w_pink(t) = alpha * sum_{k=0}^{order-1} b_k u_{t-k}, u_j = 0 for j <= 0 (MODEL.md 1.3).

    t counts the pulses since the device's last SET, of SET cycle ``cycle`` (an int or a tensor
    like ``t``). u_j (j >= 1) is word (j-1) % 4 of the pink-stream Philox block (j-1) // 4 of the
    cycle (counters c2 = block, c3 = cycle). The window
    [t-order+1, t] lies in the blocks first .. first + pink_blocks - 1, first = floor((t-order)/4),
    whose words, numbered p = 0, 1, ... in order, hold u_j at p = j - 1 - 4 * first. With
    shift = (t - order) mod 4, u_{t-k} sits at p = order - 1 + shift - k: one of four words.
    The sum runs oldest pulse first (k = order-1 down to 0). The Triton kernel sums over the
    words p in order instead, adding an exact zero for the words outside the window: the same
    float additions in the same order, so the same bits.
    """
    dtype = constants.pink_taps.dtype
    if not config.pink:
        return torch.zeros(t.shape, dtype=dtype, device=t.device)
    order = config.pink_order
    t = t.to(torch.int64)
    oldest = t - order  # the window starts at pulse oldest + 1
    first_block = torch.div(oldest, streams.PINK_BLOCK, rounding_mode="floor")
    shift = oldest - first_block * streams.PINK_BLOCK
    uniforms = []  # the uniforms of the blocks' words, in order
    for block_offset in range(pink_blocks(order)):
        counter = (first_block + block_offset).clamp(min=0)  # < 2**32: t < 2**20
        words = philox4x32(seed, index, 2 * streams.STREAM_PINK + side, counter, cycle)
        uniforms.extend(uniform_from_bits(w, dtype) for w in words)
    acc = torch.zeros(t.shape, dtype=dtype, device=t.device)
    for k in reversed(range(order)):
        p = order - 1 - k  # position of u_{t-k} for shift 0; shift s adds s
        u = torch.where(shift == 0, uniforms[p], torch.where(shift == 1, uniforms[p + 1],
                        torch.where(shift == 2, uniforms[p + 2], uniforms[p + 3])))
        u = torch.where(t - k >= 1, u, 0.0)
        acc = acc + constants.pink_b[k] * u
    return constants.pink_alpha * acc


def rtn_words(seed, index: torch.Tensor, update):
    """The four words of the RTN call of update ``update`` (0-based) for synapses ``index``."""
    update = torch.as_tensor(update, dtype=torch.int64, device=index.device)
    return philox4x32(seed, index, streams.counter_stream(streams.STREAM_RTN), update & MASK32, update >> 32)


def rtn_draws(words, side: int, dtype=torch.float32):
    """(u_flip, v, v') of the device on ``side`` from its synapse's RTN ``words``."""
    amplitude = words[2 + side]
    return (uniform_from_bits(words[side], dtype), uniform_from_16_bits(amplitude & 0xFFFF, dtype),
            uniform_from_16_bits(amplitude >> 16, dtype))


def rtn_flip_probability(constants: ModelConstants, state: torch.Tensor, pulses: torch.Tensor) -> torch.Tensor:
    """P(the trap has flipped after ``pulses`` steps from ``state``) = pi_s (1 - lambda**n) (MODEL.md 1.4)."""
    n = pulses.to(torch.int64).clamp(max=RTN_TABLE_SIZE - 1)
    return constants.rtn_flip[state.to(torch.int64), n]


def rtn_term(state: torch.Tensor, v: torch.Tensor, v_prime: torch.Tensor, a_rtn: torch.Tensor) -> torch.Tensor:
    """w_rtn = s * v * (v' * A_rtn): in state 1 a fresh random amplitude below A_rtn."""
    return torch.where(state == 1, v * (v_prime * a_rtn), 0.0)


def pack_device_state(pulses_done: torch.Tensor, rtn_state: torch.Tensor, cycle=0) -> torch.Tensor:
    """int32 words holding t in bits 0-19, the SET cycle k in bits 20-30 and the RTN state in bit 31.

    t must be at most ``streams.PULSES_MASK`` and k at most ``streams.MAX_CYCLE`` (not checked here:
    ``DeviceArray`` refuses the update or SET that would pass them).
    """
    cycle = torch.as_tensor(cycle, dtype=torch.int64, device=pulses_done.device)
    packed = (pulses_done.to(torch.int64) | (cycle << streams.CYCLE_SHIFT)
              | (rtn_state.to(torch.int64) << RTN_BIT))
    return torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)


def unpack_device_state(device_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(t int32, s uint8) from packed device-state words."""
    return device_state & PULSES_MASK, ((device_state >> RTN_BIT) & 1).to(torch.uint8)


def unpack_cycle(device_state: torch.Tensor) -> torch.Tensor:
    """The SET cycle k (int32) of packed device-state words."""
    return (device_state >> streams.CYCLE_SHIFT) & streams.MAX_CYCLE


def _cycle_words(seed, index, device_state, words, cycles: bool):
    """(cycle of each synapse (from its BL word), D2D words of that cycle); cycle 0, ``words`` without
    cycles: an array never SET makes no extra Philox call and computes exactly as before refresh existed."""
    if not cycles:
        return 0, words
    cycle = unpack_cycle(device_state[streams.SIDE_BL]).to(torch.int64)
    return cycle, d2d_words(seed, index, cycle)


def log_resistance(config, constants: ModelConstants, params, t: torch.Tensor, w_pink: torch.Tensor,
                   w_rtn: torch.Tensor) -> torch.Tensor:
    """ln R = ln R0 + ((w_mean(t) + w_pink) + w_rtn) (soft bounds: the read quantity y, g0 in place of ln R0)."""
    return params["ln_r0"] + ((mean_state(config, constants, t, params) + w_pink) + w_rtn)


def read_weights(log_r: torch.Tensor) -> torch.Tensor:
    """W = +1 where ln R_BL >= ln R_BLb else -1, int8 (sign(R_BL - R_BLb), a tie reads +1)."""
    return torch.where(log_r[streams.SIDE_BL] >= log_r[streams.SIDE_BLB], 1, -1).to(torch.int8)


def bidirectional_step(n: torch.Tensor, d: torch.Tensor, params: dict, constants: ModelConstants, words) -> torch.Tensor:
    """The BL device's new displacement d' after n signed pulses (``rramk.device.bidirectional``): the fraction
    c(|n|) of the way to the soft target of n's direction, composed over the bits of |n| as in
    :func:`soft_bounds_mean`, the step noise (STEP stream ``words`` 0, 1), then the hard bounds; with
    saturation off the steps are linear and unbounded."""
    k = n.to(torch.int64).abs()
    up = n > 0
    c = torch.zeros(d.shape, dtype=d.dtype, device=d.device)
    for b in range(streams.STEP_BITS):
        e = torch.where(up, params[f"up_{b}"], params[f"down_{b}"])
        c = torch.where(((k >> b) & 1) == 1, c + e * (1.0 - c), c)
    g0 = params["ln_r0"]
    target = torch.where(up, params["s_up"] - g0, params["s_down"] - g0)
    rate = torch.where(up, params["m1"], params["t_star"])
    step = torch.where(constants.saturation, (target - d) * c, (target * rate) * k.to(d.dtype))
    u, u_prime = uniform_from_bits(words[0], d.dtype), uniform_from_bits(words[1], d.dtype)
    moved = d + (step + (constants.pink_alpha * ((u + u_prime) - 1.0)) * step.abs())
    bounded = torch.minimum(torch.maximum(moved, params["c1"] - g0), params["m2"] - g0)
    return torch.where(constants.saturation, bounded, moved)


def _bidirectional_update(device_state, pink, n, index, config, constants, seed, update, cycles):
    """weak_reset_update of the bidirectional family: BL takes the signed pulses, BLb (the reference) none."""
    dtype = constants.pink_taps.dtype
    magnitude = n.abs()
    t_before, rtn_state = unpack_device_state(device_state)
    words = d2d_words(seed, index)
    _, cycle_words = _cycle_words(seed, index, device_state, words, cycles)
    pulses_per_side = (magnitude, torch.zeros_like(magnitude))
    update_counter = torch.as_tensor(update, dtype=torch.int64, device=index.device)
    step_words = philox4x32(seed, index, streams.counter_stream(streams.STREAM_STEP), update_counter & MASK32,
                            update_counter >> 32)
    draws = rtn_words(seed, index, update) if config.rtn else None
    new_state, new_pink, log_r = [], [], []
    for side in SIDES:
        params = d2d_parameters(config, constants, words, side, cycle_words)
        state, w_rtn = rtn_state[side], torch.zeros(index.shape, dtype=dtype, device=n.device)
        if config.rtn:
            u_flip, v, v_prime = rtn_draws(draws, side, dtype)
            state = state ^ (u_flip < rtn_flip_probability(constants, state, pulses_per_side[side])).to(state.dtype)
            w_rtn = rtn_term(state, v, v_prime, params["a_rtn"])
        w_pink = pink[side].to(dtype)
        if side == streams.SIDE_BL:
            w_pink = torch.where(magnitude > 0, bidirectional_step(n, w_pink, params, constants, step_words), w_pink)
        t = t_before[side] + pulses_per_side[side]
        new_state.append(pack_device_state(t, state, unpack_cycle(device_state[side])))
        new_pink.append(w_pink)
        log_r.append(log_resistance(config, constants, params, t, w_pink, w_rtn))
    log_r = torch.stack(log_r)
    return torch.stack(new_state), torch.stack(new_pink), read_weights(log_r), log_r


def weak_reset_update(device_state: torch.Tensor, pink: torch.Tensor, pulses: torch.Tensor, *,
                      config: HfOxWeakReset, seed, update, first=0, dtype=torch.float32,
                      constants: ModelConstants | None = None, cycles: bool = False):
    """Apply signed pulse counts to an array of synapse pairs: the reference of the kernel.

    device_state: int32 (2, N) packed (t, k, s); pink: float (2, N); pulses: integer (N,);
    update: 0-based index of this update; first: flat index of the first synapse given (to
    update a slice); cycles: read the synapses' SET cycles (False: every cycle is 0). Returns
    the new (device_state, pink), the weights int8 (N,) and ln R (2, N). The inputs are not
    modified.
    """
    if constants is None:
        constants = model_constants(config, pulses.device, dtype)
    dtype = constants.pink_taps.dtype
    n = pulses.to(torch.int32)
    index = synapse_index(first, n.shape[0], n.device)
    if config.FAMILY == streams.FAMILY_BIDIRECTIONAL:
        return _bidirectional_update(device_state, pink, n, index, config, constants, seed, update, cycles)
    pulses_per_side = (n.clamp(min=0), (-n).clamp(min=0))
    t_before, rtn_state = unpack_device_state(device_state)
    t = (t_before[0] + pulses_per_side[0], t_before[1] + pulses_per_side[1])
    words = d2d_words(seed, index)
    cycle, cycle_words = _cycle_words(seed, index, device_state, words, cycles)
    # One pink window per synapse: that of the device the update pulses (BL if n >= 0).
    pulsed_side = (n < 0).to(torch.int64)
    fresh_pink = pink_term(config, constants, seed, index, pulsed_side, torch.where(n < 0, t[1], t[0]), cycle)
    new_state, new_pink, log_r = [], [], []
    if config.rtn:
        draws = rtn_words(seed, index, update)
    for side in SIDES:
        params = d2d_parameters(config, constants, words, side, cycle_words)
        state = rtn_state[side]
        w_rtn = torch.zeros(index.shape, dtype=dtype, device=n.device)
        if config.rtn:
            u_flip, v, v_prime = rtn_draws(draws, side, dtype)
            flips = u_flip < rtn_flip_probability(constants, state, pulses_per_side[side])
            state = state ^ flips.to(state.dtype)
            w_rtn = rtn_term(state, v, v_prime, params["a_rtn"])
        w_pink = torch.where(pulses_per_side[side] > 0, fresh_pink, pink[side])
        new_state.append(pack_device_state(t[side], state, unpack_cycle(device_state[side])))
        new_pink.append(w_pink)
        log_r.append(log_resistance(config, constants, params, t[side], w_pink, w_rtn))
    log_r = torch.stack(log_r)
    return torch.stack(new_state), torch.stack(new_pink), read_weights(log_r), log_r


def read_log_resistance(device_state: torch.Tensor, pink: torch.Tensor, *, config: HfOxWeakReset, seed,
                        updates, first=0, dtype=torch.float32, constants: ModelConstants | None = None,
                        cycles: bool = False):
    """ln R (2, N) of the array as its last update (or SET) left it (``updates`` = updates so far).

    The RTN amplitude is that of the last update. Before any update every trap is in state 0,
    so w_rtn = 0 whatever the draw. ``cycles``: as in :func:`weak_reset_update`.
    """
    if constants is None:
        constants = model_constants(config, device_state.device, dtype)
    dtype = constants.pink_taps.dtype
    index = synapse_index(first, device_state.shape[1], device_state.device)
    t, rtn_state = unpack_device_state(device_state)
    last_update = (torch.as_tensor(updates, dtype=torch.int64, device=index.device) - 1).clamp(min=0)
    log_r = []
    words = d2d_words(seed, index)
    _, cycle_words = _cycle_words(seed, index, device_state, words, cycles)
    if config.rtn:
        draws = rtn_words(seed, index, last_update)
    for side in SIDES:
        params = d2d_parameters(config, constants, words, side, cycle_words)
        w_rtn = torch.zeros(index.shape, dtype=dtype, device=index.device)
        if config.rtn:
            _, v, v_prime = rtn_draws(draws, side, dtype)
            w_rtn = rtn_term(rtn_state[side], v, v_prime, params["a_rtn"])
        log_r.append(log_resistance(config, constants, params, t[side], pink[side].to(dtype), w_rtn))
    return torch.stack(log_r)


def _two_slope_mean(t, params):
    return mean_log_resistance(t, params["m1"], params["t_star"], params["c1"], params["m2"])


def write_pulses_needed(held: torch.Tensor, hi: dict, lo: dict, max_write_pulses: int,
                        verify_margin: float = 0.0, mean=_two_slope_mean) -> torch.Tensor:
    """Pulses n (int64) that re-write ``held`` into a pair fresh from a SET: the fewest n in
    [0, max_write_pulses] with which the device that must read higher (BL for W = +1, BLb for -1)
    has mean ln R = ln R0 + w_mean(n) at least (W = +1) or above (W = -1) the other's ln R0 + w_mean(0);
    ``max_write_pulses`` where none does.

    ``hi``, ``lo``: the parameters of the two devices. The search is a bisection over the float
    formula of :func:`log_resistance`, the same operations on every backend. Since the pink and
    RTN terms are >= 0 and the device that stays at t = 0 has neither, the read after these n
    pulses gives ``held`` whenever the mean does. ``verify_margin`` > 0: the device must pass the
    other's by that much ln R (a chip's verify margin against later noise and drift). ``mean(t, params)``:
    w_mean of the family (``mean_state``; default the two slopes).
    """
    zero = torch.zeros(held.shape, dtype=torch.int64, device=held.device)
    target = lo["ln_r0"] + mean(zero, lo)
    if verify_margin:
        target = target + verify_margin

    def reaches(n):
        read = hi["ln_r0"] + mean(n, hi)
        return torch.where(held >= 0, read >= target, read > target)

    low, high = zero, torch.full_like(zero, max_write_pulses)  # reaches(low) is False unless n = 0 does
    for _ in range(max(max_write_pulses - 1, 0).bit_length()):
        middle = torch.div(low + high, 2, rounding_mode="floor")
        ok = reaches(middle)
        high, low = torch.where(ok, middle, high), torch.where(ok, low, middle)
    return torch.where(reaches(zero), zero, high)


VERIFY_NOISE_SCALE = 6 ** 0.5
"""u + u' - 1 (two 32-bit uniforms) has variance 1/6: times sqrt(6) sigma, read noise of sd sigma."""


def noisy_write_pulses(held: torch.Tensor, hi: dict, lo: dict, max_write_pulses: int, read_noise: float, seed,
                       index: torch.Tensor, cycle: torch.Tensor, verify_margin: float = 0.0,
                       mean=_two_slope_mean) -> torch.Tensor:
    """Program and verify with noisy reads: the first n in [0, max_write_pulses] at which a read after n
    pulses says ``held``, the mean ln R of each device plus its read noise (:func:`write_pulses_needed`'s
    comparison); ``max_write_pulses`` where none does. Read k of a synapse in SET cycle ``cycle`` draws its
    noise from the verify stream's call (c2 = cycle, c3 = k): words 0, 1 for the device that must read
    higher, 2, 3 for the other, each sqrt(6) sigma (u + u' - 1) (triangular, sd sigma, within +- 2.45 sigma).
    A read may say ``held`` before the mean does: the weight then reads otherwise (a failed re-write).
    ``verify_margin``, ``mean``: as in :func:`write_pulses_needed`, the read must pass the other's by that much."""
    zero = torch.zeros(held.shape, dtype=torch.int64, device=held.device)
    target = lo["ln_r0"] + mean(zero, lo)
    if verify_margin:
        target = target + verify_margin
    dtype = target.dtype
    scale = VERIFY_NOISE_SCALE * read_noise
    n = torch.full_like(zero, max_write_pulses)
    found = torch.zeros(held.shape, dtype=torch.bool, device=held.device)
    for k in range(max_write_pulses + 1):
        words = philox4x32(seed, index, streams.counter_stream(streams.STREAM_VERIFY), cycle, k)
        u = [uniform_from_bits(w, dtype) for w in words]
        read_hi = (hi["ln_r0"] + mean(zero + k, hi)
                   + scale * ((u[0] + u[1]) - 1.0))
        read_lo = target + scale * ((u[2] + u[3]) - 1.0)
        ok = torch.where(held >= 0, read_hi >= read_lo, read_hi > read_lo) & ~found
        n = torch.where(ok, k, n)
        found = found | ok
        if k % 16 == 15 and bool(found.all()):  # a host sync: every 16 reads, not every read (later n stay)
            break
    return n


def weak_reset_set(device_state: torch.Tensor, pink: torch.Tensor, index: torch.Tensor, held: torch.Tensor, *,
                   config: HfOxWeakReset, seed, updates, max_write_pulses: int, dtype=torch.float32,
                   constants: ModelConstants | None = None, read_noise: float = 0.0, verify_margin: float = 0.0):
    """SET both devices of the synapses ``index`` and re-write the weights ``held``: a new cycle.

    device_state int32 (2, M), pink float (2, M): those synapses' state; index int64 (M,): their flat
    indices; held int8 (M,): their weights; updates: the array's updates so far (the RTN amplitude
    read is the last update's, as in :func:`read_log_resistance`). For each synapse (an extension of
    MODEL.md; the optimizer's refresh): (1) SET: both devices to t = 0 in the next cycle k + 1, c1 and R0
    drawn afresh (D2D call of cycle k + 1; m1, t_star, m2, A_rtn stay the device's own), pink term 0 and
    an empty window, RTN trap in state 0 (MODEL.md's state after a SET); (2) re-write: the device that
    must read higher (BL for W = +1) gets n <= ``max_write_pulses`` RESET pulses (program and verify,
    stopping at the first read of W: :func:`write_pulses_needed`, or with ``read_noise`` > 0, the sd of
    ln R of each verify read, :func:`noisy_write_pulses`, which may stop early; ``verify_margin``: how far
    the read must pass the other device's), stepping its trap's chain (flip test: word ``side`` of the
    SET stream's call of cycle k + 1), its pink term that of t = n in the new cycle.

    Returns the new (device_state, pink), the weights read int8 (M,) (``held`` unless n reached
    ``max_write_pulses`` without it or a noisy read stopped early), ln R (2, M) and n int32 (M,). The
    inputs are not modified.
    """
    if constants is None:
        constants = model_constants(config, device_state.device, dtype)
    dtype = constants.pink_taps.dtype
    cycle = unpack_cycle(device_state[streams.SIDE_BL]).to(torch.int64) + 1
    words = d2d_words(seed, index)
    fresh_words = d2d_words(seed, index, cycle)
    params = [d2d_parameters(config, constants, words, side, fresh_words) for side in SIDES]
    hi_side = torch.where(held >= 0, streams.SIDE_BL, streams.SIDE_BLB).to(torch.int64)
    hi = {name: torch.where(hi_side == 0, params[0][name], params[1][name]) for name in params[0]}
    lo = {name: torch.where(hi_side == 0, params[1][name], params[0][name]) for name in params[0]}

    def mean(t, p):
        return mean_state(config, constants, t, p)

    n = (noisy_write_pulses(held, hi, lo, max_write_pulses, read_noise, seed, index, cycle, verify_margin, mean)
         if read_noise > 0 else write_pulses_needed(held, hi, lo, max_write_pulses, verify_margin, mean))
    written_pink = torch.where(n > 0, pink_term(config, constants, seed, index, hi_side, n, cycle), 0.0)
    last_update = (torch.as_tensor(updates, dtype=torch.int64, device=index.device) - 1).clamp(min=0)
    if config.rtn:
        flip_words = philox4x32(seed, index, streams.counter_stream(streams.STREAM_SET), cycle, 0)
        draws = rtn_words(seed, index, last_update)
    new_state, new_pink, log_r = [], [], []
    zero = torch.zeros(index.shape, dtype=torch.int64, device=index.device)
    for side in SIDES:
        pulsed = hi_side == side
        t = torch.where(pulsed, n, zero)
        state = torch.zeros(index.shape, dtype=torch.uint8, device=index.device)
        w_rtn = torch.zeros(index.shape, dtype=dtype, device=index.device)
        if config.rtn:
            flips = uniform_from_bits(flip_words[side], dtype) < rtn_flip_probability(constants, state, t)
            state = flips.to(torch.uint8)
            _, v, v_prime = rtn_draws(draws, side, dtype)
            w_rtn = rtn_term(state, v, v_prime, params[side]["a_rtn"])
        w_pink = torch.where(pulsed, written_pink, 0.0).to(dtype)
        new_state.append(pack_device_state(t, state, cycle))
        new_pink.append(w_pink)
        log_r.append(log_resistance(config, constants, params[side], t, w_pink, w_rtn))
    log_r = torch.stack(log_r)
    return torch.stack(new_state), torch.stack(new_pink), read_weights(log_r), log_r, n.to(torch.int32)
