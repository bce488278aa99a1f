"""Benchmark fixtures: the size set, the machine description, CUDA-aware timing.

Run with `pytest bench --benchmark-only`. RRAMK_BENCH_SIZE picks the sizes: `cpu` (default
without CUDA: sizes a 2-core machine finishes in minutes) or `gpu` (default with CUDA: the
large sizes). See bench/README.md.
"""

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # bench/ helpers (published_baseline) import as modules

from rramk import provenance  # noqa: E402

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))

SIZE = os.environ.get("RRAMK_BENCH_SIZE", "gpu" if torch.cuda.is_available() else "cpu")
if SIZE not in ("cpu", "gpu"):
    raise pytest.UsageError(f"RRAMK_BENCH_SIZE: expected 'cpu' or 'gpu', got {SIZE!r}")


@pytest.fixture(scope="session")
def machine() -> dict:
    return provenance.machine()


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@pytest.fixture
def record(benchmark, machine):
    """record(fn, derived={name: value_per_call}, **info): time fn (synchronizing CUDA inside the
    timed call) and store the machine, the derived figures per second and ``info`` in extra_info."""

    def run(fn, device="cpu", derived: dict | None = None, rounds: int | None = None, warmup: int = 1, **info):
        def timed():
            out = fn()
            synchronize(device)
            return out

        for _ in range(warmup):
            timed()
        if rounds is None:
            result = benchmark(timed)
        else:
            result = benchmark.pedantic(timed, rounds=rounds, iterations=1)
        benchmark.extra_info.update(info)
        benchmark.extra_info["machine"] = provenance.machine_line(machine)
        benchmark.extra_info["size_set"] = SIZE
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
    target = os.environ.get("RRAMK_BENCH_JSON", str(Path(__file__).parents[1] / "reports" / "bench" / f"{SIZE}.json"))
    if target.lower() == "none":
        return
    info = provenance.machine()
    records = []
    for bench in bs.benchmarks:
        d = bench.as_dict(include_data=False)
        records.append({"name": d["name"], "group": d.get("group"), "params": d.get("params"),
                        "extra_info": d.get("extra_info", {}),
                        "stats": {k: d["stats"][k] for k in ("median", "mean", "min", "max", "stddev", "rounds")}})
    out = {"session": {"machine": provenance.machine_line(info), "date": datetime.date.today().isoformat(),
                       "command": f"RRAMK_BENCH_SIZE={SIZE} pytest bench --benchmark-only", "size_set": SIZE},
           "benchmarks": records}
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(json.dumps(out, indent=1) + "\n")
