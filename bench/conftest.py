"""Benchmark fixtures: the size set, the machine description, CPU and CUDA timing, the time budget.

Run with `pytest bench --benchmark-only`. RRAMK_BENCH_SIZE picks the sizes (bench/README.md):
`cpu` (default without CUDA: sizes a 2-core machine finishes in minutes), `gpu` (default with
CUDA: the large sizes) or `tiny` (the providers of `gpu` at a few hundred synapses; on a CPU
the Triton kernels run under the interpreter: the dry run of bench/gpu_check.sh).
RRAMK_BENCH_BUDGET_S: no benchmark starts after that many seconds of the session (it is skipped,
and says so); what was measured is saved as usual. RRAMK_BENCH_PRESET: a preset file
(rramk.load_preset) that the device benchmarks simulate instead of the published fit (CONFIG);
its session is saved to reports/bench/presets/<size set>-<preset's stem>.json.
"""

import contextlib
import math
import os
import shlex
import sys
import time
from pathlib import Path

from rramk import cli

cli.prepare_process()  # before torch loads: the CPU code path the commands run (rramk.cli.pin_code_path)

import pytest  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))  # bench/ helpers (published_baseline) import as modules

from rramk import provenance  # noqa: E402
from rramk.device.config import HfOxWeakReset  # noqa: E402
from rramk.device.preset import PresetError, load_preset  # noqa: E402

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))

SIZE_SETS = ("cpu", "gpu", "tiny")
SIZE = os.environ.get("RRAMK_BENCH_SIZE", "gpu" if torch.cuda.is_available() else "cpu")
if SIZE not in SIZE_SETS:
    raise pytest.UsageError(f"RRAMK_BENCH_SIZE: expected one of {', '.join(SIZE_SETS)}, got {SIZE!r}")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BUDGET_S = float(os.environ.get("RRAMK_BENCH_BUDGET_S", "inf"))
PRESET = os.environ.get("RRAMK_BENCH_PRESET", "")
try:  # CONFIG: the device the device benchmarks simulate, RRAMK_BENCH_PRESET's, else the published fit
    CONFIG = load_preset(PRESET) if PRESET else HfOxWeakReset()
except PresetError as e:
    raise pytest.UsageError(f"RRAMK_BENCH_PRESET: {e}") from None
STARTED = time.monotonic()

CUDA_TARGET_S = 0.1  # timed work per CUDA benchmark, as triton.testing.do_bench's rep
CUDA_ROUNDS = (5, 200)  # fewest and most timed calls per CUDA benchmark
L2_FLUSH_BYTES = 256 << 20  # zeroed before every timed CUDA call (larger than any GPU's L2)


def narrower_native_levels() -> list[str]:
    """The instruction-set levels below the CPU's widest that a bench also times the native kernel at
    (x86-64-v3, AVX2, on an AVX-512 machine): what most users' CPUs run, measured on this one."""
    try:
        from rramk.kernels import native

        levels = [level for level, _ in native.isa_levels()]
    except Exception:  # no way to tell: none
        return []
    return [level for level in levels[1:] if level == "x86-64-v3"]


@contextlib.contextmanager
def native_level(level: str | None):
    """The native kernel built for ``level`` (None: the widest, as rramk chooses) inside the block."""
    from rramk.kernels import native

    previous = os.environ.get("RRAMK_NATIVE_ISA")
    if level is not None:
        os.environ["RRAMK_NATIVE_ISA"] = level
        native.library.cache_clear()
    try:
        yield
    finally:
        if level is not None:
            if previous is None:
                os.environ.pop("RRAMK_NATIVE_ISA", None)
            else:
                os.environ["RRAMK_NATIVE_ISA"] = previous
            native.library.cache_clear()


@pytest.fixture(scope="session")
def machine() -> dict:
    return provenance.machine()


@pytest.fixture(autouse=True)
def time_budget():
    """Skip the benchmarks that would start after RRAMK_BENCH_BUDGET_S seconds of the session."""
    spent = time.monotonic() - STARTED
    if spent > BUDGET_S:
        pytest.skip(f"time budget spent: {spent:.0f} s of RRAMK_BENCH_BUDGET_S={BUDGET_S:g}")


class _CudaStamp:
    """A point on the GPU's timeline: a recorded CUDA event, with no host synchronization."""

    __slots__ = ("event",)

    def __init__(self):
        self.event = torch.cuda.Event(enable_timing=True)
        self.event.record()

    def __sub__(self, start: "_CudaStamp") -> float:
        self.event.synchronize()
        return start.event.elapsed_time(self.event) / 1e3


def cuda_clock() -> _CudaStamp:
    """pytest-benchmark's timer for CUDA calls: ``end - start`` waits for the end event and is the
    GPU time in seconds between the two events, as triton.testing.do_bench measures it."""
    return _CudaStamp()


def _time_cuda(benchmark, fn, rounds: int | None, warmup: int):
    """Time ``fn`` with CUDA events, the L2 cache flushed before each call; median of ``rounds``
    calls (default: about CUDA_TARGET_S of GPU time)."""
    flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.int8, device="cuda")

    def flush_l2():  # queued before the start event: the call's launch overlaps the flush
        flush.zero_()

    for _ in range(warmup - 1):
        fn()
    flush_l2()
    start = cuda_clock()
    fn()  # the last warm-up call, timed for the estimate
    estimate = cuda_clock() - start
    if rounds is None:
        rounds = min(CUDA_ROUNDS[1], max(CUDA_ROUNDS[0], math.ceil(CUDA_TARGET_S / max(estimate, 1e-7))))
    benchmark._timer = cuda_clock  # pytest-benchmark's timer (no public hook per benchmark)
    return benchmark.pedantic(fn, setup=flush_l2, rounds=rounds, iterations=1)


@pytest.fixture
def record(benchmark, machine):
    """record(fn, derived={name: value_per_call}, **info): time fn and store the machine, the
    derived figures per second and ``info`` in extra_info.

    CUDA (``device``): CUDA events around each call, L2 flushed before it (``_time_cuda``).
    CPU: pytest-benchmark's clock around ``fn()``; ``rounds`` (default: pytest-benchmark's
    calibration) and ``warmup`` calls before timing.
    """

    def run(fn, device="cpu", derived: dict | None = None, rounds: int | None = None, warmup: int = 1, **info):
        if torch.device(device).type == "cuda":
            result = _time_cuda(benchmark, fn, rounds, warmup)
            benchmark.extra_info["timing"] = "CUDA events, L2 flushed"
        else:
            for _ in range(warmup):
                fn()
            if rounds is None:
                result = benchmark(fn)
            else:
                result = benchmark.pedantic(fn, rounds=rounds, iterations=1)
        if benchmark.stats is None:  # --benchmark-disable: fn ran once, untimed
            return result
        benchmark.extra_info.update(info)
        benchmark.extra_info["machine"] = provenance.machine_line(machine)
        benchmark.extra_info["fingerprint"] = provenance.fingerprint(machine)
        benchmark.extra_info["native_isa"] = provenance.native_build()  # the level the native kernel ran at
        benchmark.extra_info["size_set"] = SIZE
        benchmark.extra_info["preset"] = PRESET or "published fit"
        median = benchmark.stats.stats.median
        for name, per_call in (derived or {}).items():
            benchmark.extra_info[name] = per_call / median
        return result

    return run


def pytest_sessionfinish(session, exitstatus):
    """Save this session's results to reports/bench/<size set>.json for `python -m rramk.report`.

    RRAMK_BENCH_JSON overrides the path; RRAMK_BENCH_JSON=none saves nothing (e.g. for a -k subset).
    """
    import datetime
    import json

    bs = getattr(session.config, "_benchmarksession", None)
    if bs is None or not bs.benchmarks:
        return
    name = f"presets/{SIZE}-{Path(PRESET).stem}" if PRESET else SIZE  # apart from the fit's (and its tables)
    target = os.environ.get("RRAMK_BENCH_JSON", str(Path(__file__).parents[1] / "reports" / "bench" / f"{name}.json"))
    if target.lower() == "none":
        return
    info = provenance.machine()
    records = []
    for bench in bs.benchmarks:
        d = bench.as_dict(include_data=False)
        records.append({"name": d["name"], "group": d.get("group"), "params": d.get("params"),
                        "extra_info": d.get("extra_info", {}),
                        "stats": {k: d["stats"][k] for k in ("median", "mean", "min", "max", "stddev", "rounds")}})
    args = shlex.join(session.config.invocation_params.args)
    out = {"session": {"machine": provenance.machine_line(info), "date": datetime.date.today().isoformat(),
                       "command": f"RRAMK_BENCH_SIZE={SIZE} " + (f"RRAMK_BENCH_PRESET={shlex.quote(PRESET)} " if PRESET else "")
                      + f"pytest {args}", "size_set": SIZE},
           "benchmarks": records}
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(json.dumps(out, indent=1) + "\n")
