"""The contract between the reference and the kernels: Philox counters and the state layout.

Which Philox counter names which random number (the randomness contract of DESIGN.md):

Every random number of a device array is ``philox4x32(seed, c0, c1, c2, c3)`` with

    c0 = flat synapse index in the array (0 .. numel-1, so arrays hold < 2**32 synapses)
    c1 = 2 * stream + side            side 0 = BL, 1 = BLb (0 for streams that serve both)
    c2 = time, low 32 bits            (stream-specific, below)
    c3 = time, high 32 bits

and the four words of one call are used as follows:

    stream D2D  (side 0, c2 = cycle k, c3 = 0), one call per synapse for both devices:
        device of side s uses words 2s and 2s+1, each holding three 10-bit quantile indices
        (bits 0-9, 10-19, 20-29): word 2s -> m1, t_star, c1; word 2s+1 -> m2, R0, A_rtn.
        m1, t_star, m2 and A_rtn always come from the call of cycle 0; c1 and R0 (the state a
        SET leaves, D2D_CYCLE_PARAMETERS) from the call of the synapse's SET cycle k
        (k = 0 until the first SET: the same call, so arrays never SET draw as before)
    stream PINK (side of the device, c2 = block, c3 = cycle k): pulse j >= 1 of a device in
        its cycle k uses word (j - 1) % 4 of block (j - 1) // 4, as a 32-bit uniform (tl.rand's
        conversion); j counts from the cycle's SET, so a SET leaves no pink history
    stream RTN  (side 0, c2/c3 = update index), one call per synapse for both devices:
        word s -> the flip test of side s (32-bit uniform); word 2 + s -> the amplitude draws
        of side s, v from bits 0-15 and v' from bits 16-31 (16-bit uniforms, (h + 1/2) / 2**16)
    stream SET  (side 0, c2 = the new cycle k >= 1, c3 = 0), one call per synapse and SET:
        word s -> the RTN flip test of side s over the pulses that re-write the weight

So the D2D parameters and the whole pink-noise history are functions of the counters and
need not be stored, and switching one imperfection off leaves the draws of the others as
they were (common random numbers across an ablation). Serving both devices of a synapse
from one D2D call and one RTN call keeps the Philox work at 7 calls per synapse and update
(2 + 5 for the pulsed device's pink window), the cost that bounds the update on any machine;
an array that has had a SET (refresh) adds the D2D call of its cycle: 8.
"""

STREAM_D2D = 1
STREAM_PINK = 2
STREAM_RTN = 3
STREAM_SET = 4

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
# Rows of the (7, D2D_TABLE_SIZE) D2D quantile table: the six parameters and ln R0.
D2D_TABLE_ROWS = ("m1", "t_star", "c1", "m2", "r0", "ln_r0", "a_rtn")
