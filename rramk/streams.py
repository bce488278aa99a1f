"""Which Philox counter names which random number (the randomness contract of DESIGN.md).

Every random number of a device array is ``philox4x32(seed, c0, c1, c2, c3)`` with

    c0 = flat synapse index in the array (0 .. numel-1, so arrays hold < 2**32 synapses)
    c1 = 2 * stream + side            side 0 = BL, 1 = BLb
    c2 = time, low 32 bits            (stream-specific, below)
    c3 = time, high 32 bits

and the four words of one call are used as follows:

    stream D2D  (c2 = c3 = 0): word 0 bits 0-15 -> m1, bits 16-31 -> t_star,
                               word 1 -> c1 | m2, word 2 -> R0 | A_rtn  (16-bit quantile indices)
    stream PINK (c2 = block):  pulse j >= 1 of a device uses word (j - 1) % 4 of block (j - 1) // 4
    stream RTN  (c2 = update): word 0 -> flip test, words 1 and 2 -> the amplitude draws v, v'

So the D2D parameters and the whole pink-noise history are functions of the counters and
need not be stored, and switching one imperfection off leaves the draws of the others as
they were (common random numbers across an ablation).
"""

STREAM_D2D = 1
STREAM_PINK = 2
STREAM_RTN = 3

SIDE_BL = 0
SIDE_BLB = 1

PINK_BLOCK = 4  # uniforms per Philox call in the pink stream

D2D_INDEX_BITS = 12  # each D2D parameter is one of 2**12 quantiles of its distribution
D2D_TABLE_SIZE = 1 << D2D_INDEX_BITS
# (word, shift) of each D2D parameter's 16-bit quantile index in the D2D call.
D2D_PARAMETER_BITS = {
    "m1": (0, 0),
    "t_star": (0, 16),
    "c1": (1, 0),
    "m2": (1, 16),
    "r0": (2, 0),
    "a_rtn": (2, 16),
}


def counter_stream(stream: int, side: int) -> int:
    """The c1 counter word of a (stream, side) pair."""
    return 2 * stream + side
