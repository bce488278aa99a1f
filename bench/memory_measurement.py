"""Bytes one process allocates in each DeviceArray operation (the child of memory_per_synapse.py).

:func:`measure` builds an array of N synapses and the operations' inputs, then measures each
operation once, exactly (torch's profiler allocation events, :func:`torch_peak`) or by resident
memory (/proc/self/status after ``malloc_trim`` and a reset high-water mark). :func:`per_synapse`
turns two sizes into bytes per synapse (slope) and a fixed cost (intercept). On "triton" the
fused kernels are replaced by :func:`kernel_stubs`, which allocate nothing, as a GPU kernel does.
The method in full: bench/memory_per_synapse.py's docstring; tests/test_memory.py checks the
budget with these functions.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

OPERATIONS = ("construct", "apply_pulses", "adam_step", "weights", "log_resistance", "resistance", "pulse_counts",
              "rtn_states", "pink_terms", "d2d_parameters", "state_dict", "load_state_dict", "from_state_dict")
BACKENDS = ("reference", "compiled", "triton")
# The operations whose code differs on "triton" (the fused kernels); the others run the reference's code.
TRITON_OPERATIONS = ("apply_pulses", "adam_step")


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
