"""The contract between the reference and the kernels: Philox counters and the state layout.

Every random number of a device array is ``philox4x32(seed, c0, c1, c2, c3)`` (DESIGN.md's
randomness contract) with c0 = flat synapse index (arrays hold < 2**32 synapses), c1 = 2 * stream
+ side (side 0 = BL, 1 = BLb; 0 for streams serving both), c2/c3 = time, low/high 32 bits:

    D2D  (c2 = cycle k, c3 = 0): one call per synapse; side s uses words 2s (m1, t_star, c1) and
         2s+1 (m2, R0, A_rtn), three 10-bit quantile indices each (bits 0-9, 10-19, 20-29). c1 and
         R0 (the state a SET leaves, D2D_CYCLE_PARAMETERS) come from the call of the synapse's SET
         cycle k, the others from cycle 0 (k = 0 until the first SET: the same call)
    PINK (side of the device, c2 = block, c3 = cycle k): pulse j >= 1 of the cycle uses word
         (j - 1) % 4 of block (j - 1) // 4 as a 32-bit uniform (tl.rand's conversion)
    RTN  (c2/c3 = update index): word s -> side s's flip test (32-bit uniform); word 2 + s -> its
         amplitude draws v (bits 0-15), v' (bits 16-31) as 16-bit uniforms (h + 1/2) / 2**16
    SET  (c2 = the new cycle k >= 1): word s -> side s's RTN flip test over the re-write pulses
    VERIFY (c2 = cycle k, c3 = read j): the read noise of a re-write's verify reads (refresh read_noise)
    STEP (c2/c3 = update index): words 0, 1 -> the BL device's step noise u, u' (bidirectional family)
    CHECK (side of the device, c2/c3 = the array's updates so far): words 0, 1 -> the read noise of the
         ``resistance`` refresh condition's read

So the D2D parameters and the pink history need not be stored, and switching one imperfection off
leaves the others' draws as they were (common random numbers across an ablation). The Philox cost
of this layout (7 calls per synapse and update): reports/perf-notes.md.
"""

STREAM_D2D = 1
STREAM_PINK = 2
STREAM_RTN = 3
STREAM_SET = 4
STREAM_VERIFY = 5  # c2 = SET cycle k, c3 = the read after c3 re-write pulses: its read noise (refresh)
STREAM_STEP = 6  # c2/c3 = update index: words 0, 1 the BL device's step noise (bidirectional family)
STREAM_CHECK = 7  # (side of the device) c2/c3 = updates so far: the noise of a refresh condition's read

SIDE_BL = 0
SIDE_BLB = 1

PINK_BLOCK = 4  # uniforms per Philox call in the pink stream

D2D_INDEX_BITS = 10  # each D2D parameter is one of 2**10 quantiles of its distribution
D2D_TABLE_SIZE = 1 << D2D_INDEX_BITS
# (word of the side's pair, shift) of each D2D parameter's quantile index in the D2D call.
D2D_PARAMETER_BITS = {
    "m1": (0, 0),
    "t_star": (0, 10),
    "c1": (0, 20),
    "m2": (1, 0),
    "r0": (1, 10),
    "a_rtn": (1, 20),
}
# Parameters a SET draws afresh (from the D2D call of the new cycle): the low-resistance state.
D2D_CYCLE_PARAMETERS = ("c1", "r0")


def counter_stream(stream: int, side: int = 0) -> int:
    """The c1 counter word of a (stream, side) pair."""
    return 2 * stream + side


# ---------------------------------------------------------------- state layout
# device_state int32 (2, N), one word per device:
#   bits 0-19   t, the RESET pulses since the device's last SET (at most PULSES_MASK = 2**20 - 1)
#   bits 20-30  k, the SET cycle of the synapse (0 until its first SET; at most MAX_CYCLE = 2047);
#               both words of a synapse hold the same k (a SET acts on both devices of the pair)
#   bit 31      s, the RTN trap state
PULSE_BITS = 20
PULSES_MASK = (1 << PULSE_BITS) - 1
CYCLE_SHIFT = PULSE_BITS
CYCLE_BITS = 11
MAX_CYCLE = (1 << CYCLE_BITS) - 1
RTN_BIT = CYCLE_SHIFT + CYCLE_BITS  # 31
# P(trap flipped after n pulses) is tabulated for n < RTN_TABLE_SIZE; beyond, lambda**n < 2**-40
# and the last entry (pi_s rounded to float) is the exact float answer.
RTN_TABLE_SIZE = 8192
POWER_ROWS = PULSE_BITS
# Bidirectional (rramk.device.bidirectional): slots as Bidirectional.TABLE_NAMES, then STEP_BITS rows of
# 1 - (1 - rate_up)^(2^b) (rate_up's quantile), STEP_BITS of rate_down's (its quantile), and the soft targets
# s_up (g_max's quantile), s_down (g_min's): the composition runs over the bits of |n| <= 2**15 - 1.
STEP_BITS = 15
# Rows of the (7, D2D_TABLE_SIZE) D2D quantile table: the six parameters and ln R0 (HfOx's names: the slots
# every family fills, SLOT_PARAMETERS). A soft-bounds table has POWER_ROWS more rows after them.
D2D_TABLE_ROWS = ("m1", "t_star", "c1", "m2", "r0", "ln_r0", "a_rtn")
# Device families (the kernels' FAMILY): the two-slope HfOx weak RESET, soft bounds.
FAMILY_TWO_SLOPES = 0
FAMILY_SOFT_BOUNDS = 1
FAMILY_BIDIRECTIONAL = 2
# Soft bounds (rramk.device.soft_bounds): its parameters fill slots (SoftBounds.TABLE_NAMES; t_star, c1 unused:
# 0), the y0 row ("ln_r0", which the read adds) holds g0 itself, and row len(D2D_TABLE_ROWS) + b holds
# 1 - (1 - rate)^(2^b), b < POWER_ROWS: 1 - (1 - rate)^t is composed from the bits of t (t < 2**PULSE_BITS).
