"""Peak memory per synapse of every DeviceArray operation, on each backend: reports/memory.md.

    python bench/memory_per_synapse.py                          # writes reports/memory.md
    python bench/memory_per_synapse.py --sizes 14 16 --chunk 10 --out -   # quick, printed only

Method. For each backend and each of two array sizes N, a fresh process builds an array of N
synapses (float32) and the operations' inputs, then runs every operation in turn (once more
before, to compile, on "compiled") and measures it, in one of two ways (a process each):

* exactly, the bytes torch allocates: the operation runs under ``torch.profiler`` with
  ``profile_memory=True``, whose raw allocation events (+bytes, -bytes, in order) give the peak
  of the bytes alive above those alive before the call (``torch_peak``); what the result keeps
  is the size of the tensors it holds;
* as a cross-check, the resident memory: free heap pages are given back (``malloc_trim``) and
  the high-water mark is reset (``/proc/self/clear_refs``, Linux) before a second call; peak and
  kept are read from /proc/self/status. glibc serves every new allocation of 64 KiB or more by
  mmap (``MALLOC_MMAP_THRESHOLD_``) so that freed tensors leave at once; the kernel's RSS
  counters lag by a few hundred KiB, about 0.3 B per synapse at the default sizes.

Each figure is the difference between the two sizes divided by the difference of N, so that
fixed costs cancel; the intercept at N = 0 is an operation's fixed cost, the temporaries of one
chunk. The runs use chunks of 2**``--chunk`` synapses (``backends.REFERENCE_CHUNK`` set in the
process) so that both sizes span many chunks; bytes per synapse do not depend on the chunk, and
the fixed cost per chunk synapse times the shipped REFERENCE_CHUNK is the shipped fixed cost.

"triton" is the dispatcher's GPU path with the fused kernels replaced by a stub that writes
their output (the weights): a kernel keeps its work in registers and allocates nothing, so what
this path allocates is what a GPU run allocates (Triton's interpreter would copy whole tensors
to numpy, which a GPU does not do). Its other operations run the same code as "reference".

The code: memory_measurement.py (what a child process measures), memory_report.py (the report).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from memory_measurement import BACKENDS, OPERATIONS, TRITON_OPERATIONS, measure, per_synapse
from memory_report import report

ROOT = Path(__file__).resolve().parents[1]


def child_environment(backend: str) -> dict:
    env = dict(os.environ)
    env["MALLOC_MMAP_THRESHOLD_"] = str(64 * 1024)  # fixed threshold: freed tensors leave the resident set
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if backend == "triton":
        env["TRITON_INTERPRET"] = "1"  # launchable on CPU tensors; the kernels themselves are stubbed
    return env


def run_child(operations: list[str], backend: str, log2n: int, log2chunk: int, method: str) -> list[dict]:
    """``measure`` in a fresh process."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", backend, str(log2n), str(log2chunk),
               method, *operations]
    done = subprocess.run(command, env=child_environment(backend), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_all(backends: list[str], operations: list[str], sizes: list[int], log2chunk: int,
                rss: bool = True) -> dict:
    """{(operation, backend): per_synapse(...)}, one process per backend, size and method."""
    results = {}
    for backend in backends:
        ops = [op for op in operations if backend != "triton" or op in TRITON_OPERATIONS]
        if not ops:
            continue
        runs = []
        for size in sizes:
            rows = run_child(ops, backend, size, log2chunk, "torch")
            if rss:
                rows = [{**t, **r} for t, r in zip(rows, run_child(ops, backend, size, log2chunk, "rss"))]
            runs.append(rows)
        small, large = runs
        for a, b in zip(small, large):
            r = results[(a["operation"], backend)] = per_synapse(a, b)
            print(f"{backend:10s} {a['operation']:16s} torch: peak {r['torch_peak']:6.2f} kept {r['torch_kept']:6.2f} "
                  f"B/syn, fixed {r['torch_peak_fixed'] / 1e6:6.1f} MB"
                  + (f"; rss: peak {r['rss_peak']:6.2f} kept {r['rss_kept']:6.2f}" if rss else ""), flush=True)
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[19, 21], metavar=("LOG2_SMALL", "LOG2_LARGE"),
                        help="the two array sizes, as powers of two (default 19 21)")
    parser.add_argument("--chunk", type=int, default=16, help="log2 of REFERENCE_CHUNK in these runs (default 16)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--operations", nargs="+", default=list(OPERATIONS), choices=OPERATIONS)
    parser.add_argument("--no-rss", action="store_true", help="only the exact torch figures, not the rss cross-check")
    parser.add_argument("--out", default=str(ROOT / "reports" / "memory.md"), help="report path, '-' to print only")
    parser.add_argument("--child", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        backend, log2n, log2chunk, method, *operations = args.child
        print(json.dumps(measure(operations, backend, 1 << int(log2n), 1 << int(log2chunk), method)))
        return
    start = time.perf_counter()
    results = measure_all(args.backends, args.operations, args.sizes, args.chunk, not args.no_rss)
    text = report(results, args, time.perf_counter() - start)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
