"""The Philox floor of the native device update (issue 19, point 1: count first).

    python bench/time_philox_floor.py [synapses] [repeats]

Builds, at each x86 instruction-set level this CPU runs (x86-64-v4 = AVX-512, v3 = AVX2), a kernel
that does only the random-number part of the full model's update: for every synapse the Philox4x32-10
blocks the update draws (1 for both devices' D2D parameters, 1 for their RTN step, pink_blocks(15) = 5
for the pulsed device's 1/f window), with the update's own PHILOX macro (the kernel's source is
included, not copied), the same flags and the same OpenMP threading, and xors the words into one
output per synapse so that nothing is optimized away. Prints the median time per call and the time
per synapse; the update itself (reports/bench/cpu.json) cannot be faster than this. A quick A/B
harness (figures for reports/perf-notes.md); the benchmarks of reports/ come from `pytest bench`.
"""

from __future__ import annotations

import ctypes
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from rramk.device import model_tables
from rramk.kernels import native

BLOCKS_PER_SYNAPSE = 2 + model_tables.pink_blocks(15)  # D2D, RTN, the pink window of order 15

FLOOR = r"""
#include "%(source)s"
#include <omp.h>

/* BLOCKS Philox blocks per synapse, counters as the update's (index, stream, update word), xored. */
void philox_floor(int64_t n, uint64_t seed, uint32_t *out) {
    const uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    #pragma omp parallel for schedule(static)
    for (int64_t first = 0; first < n; first += BLOCK) {
        int count = n - first < BLOCK ? (int)(n - first) : BLOCK;
        #pragma omp simd
        for (int i = 0; i < count; i++) {
            uint32_t index = (uint32_t)(first + i), acc = 0;
            for (int b = 0; b < %(blocks)d; b++) {
                uint32_t w0, w1, w2, w3;
                PHILOX(k0, k1, index, 2u * STREAM_PINK, (uint32_t)b, 0u, w0, w1, w2, w3);
                acc ^= w0 ^ w1 ^ w2 ^ w3;
            }
            out[first + i] = acc;
        }
    }
}
"""


def build(level: str, flags: list[str], directory: Path) -> ctypes.CDLL:
    source = directory / f"floor-{level}.c"
    source.write_text(FLOOR % {"source": native.SOURCE, "blocks": BLOCKS_PER_SYNAPSE})
    library = directory / f"floor-{level}.so"
    cc = native.compiler()
    command = [cc, *native.FLAGS, "-fopenmp", *flags, *native._defines(), str(source), "-o", str(library), "-lm"]
    subprocess.run(command, check=True, capture_output=True, text=True)
    lib = ctypes.CDLL(str(library))
    lib.philox_floor.argtypes = [ctypes.c_int64, ctypes.c_uint64, ctypes.c_void_p]
    return lib


def main(synapses: int = 2_352_000, repeats: int = 15) -> None:
    out = torch.empty(synapses, dtype=torch.int32)
    print(f"{synapses} synapses x {BLOCKS_PER_SYNAPSE} Philox blocks, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        for level, flags in native.isa_levels():
            if level not in ("x86-64-v4", "x86-64-v3"):
                continue
            lib = build(level, flags, Path(tmp))
            times = []
            for _ in range(repeats):
                tick = time.perf_counter()
                lib.philox_floor(synapses, 42, out.data_ptr())
                times.append(time.perf_counter() - tick)
            ms = statistics.median(times[1:]) * 1e3
            print(f"{level}: {ms:.1f} ms per call, {ms * 1e6 / synapses:.2f} ns per synapse "
                  f"({ms * 1e6 / synapses / BLOCKS_PER_SYNAPSE:.2f} ns per block)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
