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
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = ("construct", "apply_pulses", "adam_step", "weights", "log_resistance", "resistance", "pulse_counts",
              "rtn_states", "pink_terms", "d2d_parameters", "state_dict", "load_state_dict", "from_state_dict")
BACKENDS = ("reference", "compiled", "triton")
# The operations whose code differs on "triton" (the fused kernels); the others run the reference's code.
TRITON_OPERATIONS = ("apply_pulses", "adam_step")
# What the caller holds after the operation, bytes per synapse of a float32 array: its result.
RESULT_BYTES = {"construct": "17: state 16 + weights 1", "apply_pulses": "0: state in place",
                "adam_step": "0: state, moments in place", "weights": "4: float32",
                "log_resistance": "8: (2, N) float32", "resistance": "16: 2 x float64",
                "pulse_counts": "8: 2 x int32", "rtn_states": "2: 2 x uint8", "pink_terms": "8: 2 x float32",
                "d2d_parameters": "56: 7 x (2, N) float32", "state_dict": "18: t 8 + s 2 + pink 8",
                "load_state_dict": "0: state in place", "from_state_dict": "17: a new array"}
GB = 140e9  # the H200's memory as the issue states it
CONTEXT = 1e9  # allowed for the CUDA context and the caching allocator's slack (not measured here)
PHILOX_LIMIT = 2**32 - 1  # synapses per array (the Philox counter c0)


# ------------------------------------------------------------------ child: the measurements

def _memory_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB."""
    status = Path("/proc/self/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
    return rss, hwm


def _reset_peak() -> None:
    """Give free heap pages back to the system, then VmHWM := VmRSS.

    glibc serves a large request from free heap memory before it maps new memory, whatever its
    mmap threshold: without the trim, memory that the profiler or an earlier operation freed would
    be reused without showing in the resident memory.
    """
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    Path("/proc/self/clear_refs").write_text("5")


def torch_peak(fn):
    """(``fn()``, peak): the peak of the bytes torch allocated during the call above those alive
    before it, from the profiler's allocation events (+bytes, -bytes, in order).

    The profiler reports the freeing of memory it saw allocated; memory allocated before any
    profiled call and freed during this one is not subtracted, so the figure can only overstate
    the peak, where such memory is freed before the peak (none of the operations measured here
    frees old memory before it has allocated its new memory).
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())  # stable: same-time events keep their recorded order
    alive = peak = 0
    for e in events:
        alive += e.nbytes()
        peak = max(peak, alive)
    return result, peak


def result_bytes(result) -> int:
    """Bytes of the distinct tensor storages ``result`` holds (a DeviceArray: its state and weights)."""
    import torch

    seen = {}

    def walk(x):
        if isinstance(x, torch.Tensor):
            storage = x.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif hasattr(x, "_state"):  # a DeviceArray
            walk([x._state, x._pink, x._weights])

    walk(result)
    return sum(seen.values())


def kernel_stubs() -> list[tuple[object, str, object]]:
    """(module, name, stub) of each fused kernel's launcher: stubs that write the kernel's output
    (the weights) and nothing else, as a GPU kernel allocates nothing."""
    from rramk.kernels import weak_reset as update_kernel
    from rramk.kernels import weak_reset_adam as adam_kernel

    def update(device_state, pink, pulses, weights, **kwargs):
        weights.fill_(1)

    def adam(grad, exp_avg, exp_avg_sq, device_state, pink, weights, **kwargs):
        weights.fill_(1)

    return [(update_kernel, "weak_reset_update", update), (adam_kernel, "weak_reset_adam_step", adam)]


def _setup_process(backend: str, chunk: int | None, stub: bool):
    """Threads, kernel stubs (on "triton" when ``stub``) and REFERENCE_CHUNK for this process; the backends module."""
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    if backend == "triton" and stub:
        for module, name, fn in kernel_stubs():
            setattr(module, name, fn)
    from rramk.device import backends

    if chunk is not None:
        backends.REFERENCE_CHUNK = chunk
    return backends


def _operation_runner(backend: str, numel: int):
    """``run(operation)``: one call of ``operation`` on an array of ``numel`` synapses and inputs built here, once."""
    import torch

    from rramk import DeviceArray

    g = torch.Generator().manual_seed(0)
    pulses = torch.randint(-14, 15, (numel,), generator=g, dtype=torch.int32)
    grad = torch.randn(numel, generator=g)
    moments = (torch.zeros(numel), torch.zeros(numel))
    array = DeviceArray((numel,), seed=1, backend=backend)
    array.apply_pulses(pulses)
    state = array.state_dict()
    step = [0]

    def run(operation):
        if operation == "construct":
            return DeviceArray((numel,), seed=1, backend=backend)
        if operation == "apply_pulses":
            return array.apply_pulses(pulses)
        if operation == "adam_step":
            step[0] += 1
            return array.adam_step(grad, *moments, step=step[0], lr_pulses=12)
        if operation == "load_state_dict":
            return array.load_state_dict(state)
        if operation == "from_state_dict":
            return DeviceArray.from_state_dict(state, backend=backend)
        return getattr(array, operation)()

    return run


def _measure_operation(run, operation: str, method: str) -> dict:
    """The bytes of one call ``run(operation)``, by ``method`` ("torch" or "rss", as in :func:`measure`)."""
    import gc

    gc.collect()
    if method == "rss":
        _reset_peak()
        base, _ = _memory_kb()
        start = time.perf_counter()
        result = run(operation)  # alive until the memory after the call is read: it counts as kept
        seconds = round(time.perf_counter() - start, 3)
        after, peak = _memory_kb()
        del result
        return {"seconds": seconds, "rss_peak": (peak - base) * 1024, "rss_kept": (after - base) * 1024}
    result, peak = torch_peak(lambda: run(operation))
    return {"torch_peak": peak, "torch_kept": result_bytes(result)}


def measure(operations: list[str], backend: str, numel: int, chunk: int | None, method: str = "torch",
            stub: bool = True) -> list[dict]:
    """Bytes of each of ``operations`` on ``numel`` synapses (module docstring), in this order.

    ``chunk``: REFERENCE_CHUNK for the process (None: as it is); ``method``: "torch" (exact, the
    profiler's allocation events) or "rss" (resident memory; in a process of its own, as the
    profiler's own memory would disturb it); ``stub``: on "triton", replace the kernels by
    :func:`kernel_stubs` for good.
    """
    backends = _setup_process(backend, chunk, stub)
    run = _operation_runner(backend, numel)
    rows = []
    for operation in operations:
        if backend == "compiled":  # compilation happens on the first call
            run(operation)
        row = {"operation": operation, "backend": backend, "numel": numel, "chunk": backends.REFERENCE_CHUNK}
        row.update(_measure_operation(run, operation, method))  # its result is freed before the next one
        rows.append(row)
    return rows


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


# ------------------------------------------------------------------ parent: the report

def per_synapse(small: dict, large: dict) -> dict:
    """Bytes per synapse (slope between the sizes) and fixed bytes (intercept) of each measure."""
    dn = large["numel"] - small["numel"]
    out = {"seconds": large.get("seconds"), "chunk": small["chunk"], "raw": [small, large]}
    for key in ("torch_peak", "torch_kept", "rss_peak", "rss_kept"):
        if key in small:
            slope = (large[key] - small[key]) / dn
            out[key] = slope
            out[key + "_fixed"] = small[key] - slope * small["numel"]
    return out


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


def largest(persistent: float, transient: float, fixed: float) -> float:
    """Synapses whose persistent and transient bytes fit in GB bytes after ``fixed``."""
    return (GB - fixed) / (persistent + transient)


def _cell(results: dict, op: str, backend: str, key: str, fmt: str = "{:.1f}") -> str:
    """``results[(op, backend)][key]`` formatted, or "-" when it was not measured."""
    r = results.get((op, backend))
    return "-" if r is None or key not in r else fmt.format(r[key])


def _header(args, elapsed: float) -> list[str]:
    """The title, the command, the machine and the method, up to the bytes table's heading."""
    from rramk.provenance import command_line, machine_line

    return [
        "# Memory per synapse of DeviceArray operations",
        "",
        f"Command: `{command_line()}` ({elapsed / 60:.1f} min). Date: {datetime.date.today().isoformat()}.",
        f"Machine: {machine_line()}.",
        "",
        "Method: bench/memory_per_synapse.py (its docstring). Each backend in a fresh process per size, "
        f"N = 2**{args.sizes[0]} and 2**{args.sizes[1]} synapses (float32 arrays), chunks of 2**{args.chunk} "
        "synapses; figures are differences between the sizes divided by the difference of N, so fixed costs "
        "cancel. **torch**: exact, the bytes torch allocates (profiler allocation events); **rss**: resident "
        "memory, a cross-check (+-0.3 B). Peak: above everything alive before the call (the array, the "
        "inputs); it includes the result. Kept: the result. \"triton\" is the dispatcher's GPU path with the "
        "fused kernels stubbed (a kernel allocates nothing): the bytes of a GPU run; its other operations run "
        "the reference's code (the reads go through the reference in chunks on every backend but compiled).",
        "",
    ]


def _bytes_table(results: dict, chunk: int) -> list[str]:
    """The table of bytes per synapse, one row per operation (``chunk``: synapses per chunk in these runs)."""
    lines = [
        "## Bytes per synapse",
        "",
        "| operation | result (B/syn) | reference: peak / kept | compiled: peak / kept | triton (GPU path): "
        "peak / kept | rss peak: reference / compiled | fixed: B per chunk synapse, reference / compiled |",
        "|---|---|---|---|---|---|---|",
    ]
    for op in OPERATIONS:
        cells = [f"{_cell(results, op, b, 'torch_peak')} / {_cell(results, op, b, 'torch_kept')}" for b in BACKENDS]
        if (op, "triton") not in results and (op, "reference") in results:
            cells[2] = "= reference"
        rss = " / ".join(_cell(results, op, b, "rss_peak") for b in ("reference", "compiled"))
        fixed = " / ".join("-" if (op, b) not in results else f"{results[(op, b)]['torch_peak_fixed'] / chunk:.0f}"
                           for b in ("reference", "compiled"))
        lines.append(f"| {op} | {RESULT_BYTES[op]} | " + " | ".join(cells) + f" | {rss} | {fixed} |")
    return lines


def _fixed_cost(results: dict, chunk: int) -> tuple[float, list[str]]:
    """The shipped fixed cost in bytes (the largest per chunk synapse x REFERENCE_CHUNK), and its paragraph."""
    from rramk.device.backends import REFERENCE_CHUNK

    per_chunk = max([r["torch_peak_fixed"] / chunk for (op, b), r in results.items() if b == "reference"] or [0.0])
    fixed = per_chunk * REFERENCE_CHUNK
    return fixed, [
        "",
        "The transient part of an operation is peak - kept. The fixed cost is one chunk's temporaries, given "
        "per synapse of the chunk: with the shipped REFERENCE_CHUNK of "
        f"{REFERENCE_CHUNK} synapses the largest is {per_chunk:.0f} x {REFERENCE_CHUNK} = {fixed / 1e6:.0f} MB "
        "(the reference, and the GPU path's reads; compiled code works on "
        "COMPILE_CHUNK synapses at a time within a chunk, so its fixed cost grows less than this).",
        "",
    ]


def _capacity_section(results: dict, fixed: float) -> list[str]:
    """Persistent bytes and the largest arrays in GB (GPU path); [] unless construct, apply_pulses, adam_step ran."""

    def gpu(op):
        return results.get((op, "triton")) or results.get((op, "reference"))

    if not all(gpu(op) is not None for op in ("construct", "apply_pulses", "adam_step")):
        return []
    update = max(gpu("apply_pulses")["torch_peak"], 0.0)
    adam = max(gpu("adam_step")["torch_peak"], 0.0)
    construct = gpu("construct")["torch_peak"]
    bare = 16 + 1 + 4  # state, weights cache, the caller's int32 pulses
    layer = 16 + 1 + 4 + 4 + 8  # state, weights, parameter, gradient, Adam moments
    layer_step = adam + 1  # the step's, plus the optimizer's (before != after) bool
    allowance = fixed + CONTEXT
    return [
        "## Persistent bytes and the largest arrays in 140 GB (H200)",
        "",
        "| item | bytes per synapse |",
        "|---|---|",
        "| device state: pulse counts with RTN bits (int32 x 2), pink terms (float32 x 2) | 16 |",
        "| weights cache (int8) | 1 |",
        "| pulses passed to apply_pulses (int32, the caller's tensor) | 4 |",
        "| WeakResetAdam: parameter (float32) + gradient (float32) | 8 |",
        "| WeakResetAdam: Adam moments exp_avg, exp_avg_sq (float32) | 8 |",
        "",
        f"Synapses that fit in {GB / 1e9:.0f} GB ({GB:.3g} bytes) on the GPU path, after a fixed "
        f"{allowance / 1e9:.2f} GB: one chunk's temporaries ({fixed / 1e9:.2f} GB, above) and "
        f"{CONTEXT / 1e9:.0f} GB allowed for the CUDA context and the caching allocator's slack. "
        f"Construction peaks at {construct:.1f} B per synapse (the new array), below either use:",
        "",
        "| use | persistent B/syn | transient B/syn (peak of a step) | synapses that fit | arrays needed |",
        "|---|---|---|---|---|",
        f"| (a) bare DeviceArray updated by apply_pulses | {bare} | {update:.1f} | "
        f"{largest(bare, update, allowance):.3g} | {-(-largest(bare, update, allowance) // PHILOX_LIMIT):.0f} |",
        f"| (b) layer trained by WeakResetAdam (parameter, gradient, moments, state) | {layer} | "
        f"{layer_step:.1f} (adam_step, + 1 of the optimizer's flip count) | "
        f"{largest(layer, layer_step, allowance):.3g} | "
        f"{-(-largest(layer, layer_step, allowance) // PHILOX_LIMIT):.0f} |",
        "",
        f"One array holds fewer than 2**32 = {2**32:.3g} synapses (the Philox counter c0): (a) needs "
        "several arrays (layers), each with its own seed. Reads a user asks for add their result on top "
        "(weights() 4 B, log_resistance() 8 B, resistance() 16 B, d2d_parameters() 56 B per synapse, "
        "d2d_parameters(\"t_star\") 8 B). Not counted: a network's activations. "
        "WeakResetAdam.device_statistics(), once per epoch, reads DeviceArray.wear(): chunk by chunk, "
        "nothing of the array's size (it used to stack the pulse counts in float64 with all seven D2D "
        "parameters, ~100 B per synapse; tests/test_memory.py checks wear() against that).",
        "",
    ]


def _raw_section(results: dict) -> list[str]:
    """Every measured row, as JSON lines in a code block."""
    lines = ["## Raw measurements (bytes; rss from KiB)", "", "```"]
    for key in sorted(results):
        for row in results[key]["raw"]:
            lines.append(json.dumps(row))
    return lines + ["```", ""]


def report(results: dict, args, elapsed: float) -> str:
    """reports/memory.md: header, bytes per synapse, fixed cost, capacity in 140 GB, raw rows."""
    chunk = 1 << args.chunk
    fixed, fixed_lines = _fixed_cost(results, chunk)
    lines = _header(args, elapsed) + _bytes_table(results, chunk) + fixed_lines
    lines += _capacity_section(results, fixed) + _raw_section(results)
    return "\n".join(lines)


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
