"""One-call GPU timings (run by bench/gpu_check.sh): memory ceiling, device update, fused step, binary products.

Measured on one CUDA GPU, in about 5 minutes on an H200 (``GPU_CHECK_BUDGET_S``):

1. ``copy``: the device-to-device bandwidth of a large ``torch`` copy (bytes read + written /
   time), the memory ceiling every figure below is compared with.
2. ``update``: ``DeviceArray.apply_pulses`` (backend ``triton``) at 1e6, 1e7, 1e8 synapses; the
   bare kernel ``rramk.kernels.weak_reset.weak_reset_update`` in place (the API call also clones
   the 16 B/synapse state); the PyTorch reference (``backend="reference"``, CUDA tensors) up to
   ``GPU_CHECK_REFERENCE_MAX``; the published-structure baseline (``bench/published_baseline.py``:
   scipy draws on the CPU, then its tensors moved to the GPU, or timed on the CPU and labelled so
   where that fails) up to ``GPU_CHECK_BASELINE_MAX``. GB/s counts the bytes the update must move,
   37 B/synapse (kernels/weak_reset.py), and is compared with the copy bandwidth.
3. ``fused step``: ``DeviceArray.adam_step`` (triton), its bare kernel, the reference; 53 B/synapse
   (kernels/weak_reset_adam.py); speed-up over the published-structure update (which does less:
   no Adam).
4. ``memory``: state bytes per synapse (``DeviceArray.state_bytes_per_synapse``) and whether 1e9
   synapses with their Adam moments fit in this GPU's memory (computed, not allocated).
5. ``binary matmul``: every binary layer of both networks at batch 1, 100, 1000 and every provider
   of ``bench/test_bench_xnor_matmul.py`` (its shape list and providers are imported: one source of
   truth); TOPS = 2 M N K / time.

Correctness first (device/METHOD.md): before any timing, a DeviceArray on the fast backend and one
on the reference, same seed, take the same fresh random pulses (2 updates) and gradients (2 fused
steps) and must agree bit for bit (weights, pulse counts, RTN states, pink terms, moments); every
binary product is compared with torch's float result on its +-1 operands, with its output memory
poisoned first (``poisoned_call``). A failed check is reported in the table (and that result is not
timed); the script goes on with the rest.

Timing: ``triton.testing.do_bench`` (CUDA events, L2 flushed before each run, warm-up, median) for
calls under 50 ms; longer calls: CUDA events around each of ``GPU_CHECK_SLOW_REPS`` calls after a
warm-up, median. Dry run: ``time.perf_counter`` around each call.

Output: ``$OUT`` if set, else ``reports/gpu/``: ``gpu_timings.json`` (every row, the machine, the
configuration), ``gpu_timings.md`` (every row) and ``gpu_timings_summary.md`` (the short tables),
rewritten after each section, so a run cut short keeps what it measured. The summary is printed
last (``GPU_CHECK_PRINT_TABLE=0``: not printed; gpu_check.sh prints it itself).

Environment (defaults; dry-run defaults in brackets):

* ``GPU_CHECK_DRY_RUN=1``: run on the CPU: tiny sizes, the ``compiled`` and ``reference`` backends,
  the CPU providers of the matmul benchmark, no CUDA-only rows; checks the script, not the GPU.
* ``GPU_CHECK_SYNAPSES`` 1e6,1e7,1e8 [1e4,1e5]; ``GPU_CHECK_REFERENCE_MAX`` 1e8 [1e5];
  ``GPU_CHECK_BASELINE_MAX`` 1e6 [1e4]; ``GPU_CHECK_CHECK_SYNAPSES`` 100003 [10007];
  ``GPU_CHECK_FAST_BACKEND`` triton [compiled].
* ``GPU_CHECK_BATCHES`` 1,100,1000 [1]; ``GPU_CHECK_LAYERS``: comma-separated substrings of case
  ids to keep ("" = all) [fc,conv6]; ``GPU_CHECK_MATMUL=0`` skips the binary products.
* ``GPU_CHECK_COPY_MB`` 4096 [64]; ``GPU_CHECK_WARMUP_MS`` 25; ``GPU_CHECK_REP_MS`` 100;
  ``GPU_CHECK_SLOW_REPS`` 3; ``GPU_CHECK_BUDGET_S`` 255: no measurement starts after that many
  seconds (its row says so).
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import signal
import statistics
import sys
import time
import traceback
import types
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

UPDATE_BYTES = 37  # per synapse, kernels/weak_reset.py
FUSED_BYTES = 53  # per synapse, kernels/weak_reset_adam.py
MOMENT_BYTES = 8  # Adam exp_avg + exp_avg_sq, float32
SLOW_CALL_MS = 50.0  # above this, time a few calls with events instead of do_bench
LR_PULSES = 20.0


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


class Config:
    """Sizes and repetitions, from the environment (module docstring)."""

    def __init__(self):
        self.dry_run = _env("GPU_CHECK_DRY_RUN", "0") == "1"
        dry = self.dry_run
        self.device = torch.device("cpu" if dry else "cuda")
        self.synapses = _sizes(_env("GPU_CHECK_SYNAPSES", "1e4,1e5" if dry else "1e6,1e7,1e8"))
        self.reference_max = int(float(_env("GPU_CHECK_REFERENCE_MAX", "1e5" if dry else "1e8")))
        self.baseline_max = int(float(_env("GPU_CHECK_BASELINE_MAX", "1e4" if dry else "1e6")))
        self.check_synapses = int(float(_env("GPU_CHECK_CHECK_SYNAPSES", "10007" if dry else "100003")))
        self.fast_backend = _env("GPU_CHECK_FAST_BACKEND", "compiled" if dry else "triton")
        self.batches = _sizes(_env("GPU_CHECK_BATCHES", "1" if dry else "1,100,1000"))
        self.layers = [s.strip() for s in _env("GPU_CHECK_LAYERS", "fc,conv6" if dry else "").split(",") if s.strip()]
        self.matmul = _env("GPU_CHECK_MATMUL", "1") == "1"
        self.copy_bytes = int(float(_env("GPU_CHECK_COPY_MB", "64" if dry else "4096"))) << 20
        self.warmup_ms = float(_env("GPU_CHECK_WARMUP_MS", "25"))
        self.rep_ms = float(_env("GPU_CHECK_REP_MS", "100"))
        self.slow_reps = int(_env("GPU_CHECK_SLOW_REPS", "3"))
        self.budget_s = float(_env("GPU_CHECK_BUDGET_S", "255"))
        self.print_table = _env("GPU_CHECK_PRINT_TABLE", "1") == "1"
        out = os.environ.get("OUT")
        self.out_dir = Path(out) if out else REPO / "reports" / "gpu"

    def as_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, (Path, torch.device)) else v) for k, v in vars(self).items()}


class OutOfBudget(Exception):
    pass


class Session:
    """Rows of results, the clock, and the output files."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.t0 = time.monotonic()
        self.rows: list[dict] = []
        self.checks: list[dict] = []
        self.facts: dict = {}
        self.started = datetime.datetime.now().isoformat(timespec="seconds")

    # ------------------------------------------------------------------ clock
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def ensure_budget(self) -> None:
        if self.elapsed() > self.cfg.budget_s:
            raise OutOfBudget(f"skipped: time budget ({self.cfg.budget_s:.0f} s) spent")

    def log(self, message: str) -> None:
        print(f"[gpu_timings +{self.elapsed():5.0f}s] {message}", flush=True)

    # ------------------------------------------------------------------ timing
    def _sync(self) -> None:
        if self.cfg.device.type == "cuda":
            torch.cuda.synchronize()

    def measure(self, fn) -> dict:
        """Median seconds of ``fn()`` (already run once by its check), and how it was timed."""
        self.ensure_budget()
        if self.cfg.device.type != "cuda":
            fn()
            start = time.perf_counter()
            fn()
            first = time.perf_counter() - start
            times = [first]
            for _ in range(max(0, min(20, int(0.3 / max(first, 1e-9))) - 1)):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            return {"median_s": statistics.median(times), "reps": len(times), "method": "perf_counter"}
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        fn()
        torch.cuda.synchronize()
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        first_ms = start.elapsed_time(end)
        if first_ms < SLOW_CALL_MS:
            import triton.testing

            ms = triton.testing.do_bench(fn, warmup=self.cfg.warmup_ms, rep=self.cfg.rep_ms, return_mode="median")
            return {"median_s": ms / 1e3, "reps": max(1, int(self.cfg.rep_ms / max(first_ms, 1e-3))),
                    "method": "do_bench"}
        times = []
        for _ in range(self.cfg.slow_reps):
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        return {"median_s": statistics.median(times), "reps": len(times), "method": "cuda events"}

    # ------------------------------------------------------------------ rows
    def row(self, section: str, case: str, provider: str, *, status: str = "ok", **values) -> dict:
        r = {"section": section, "case": case, "provider": provider, "status": status, **values}
        self.rows.append(r)
        shown = f"{r['median_s'] * 1e3:.3f} ms" if "median_s" in r else status
        self.log(f"{section:14s} {case:34s} {provider:34s} {shown}")
        return r

    def timed_row(self, section: str, case: str, provider: str, fn, *, per_call: dict | None = None,
                  **values) -> dict:
        """Time ``fn`` and add a row with the rates ``per_call`` (name: amount per call) turned per second.

        Any failure becomes the row's status (the script goes on): ``skipped: time budget``,
        ``OOM``, ``error: ...``.
        """
        try:
            timing = self.measure(fn)
        except OutOfBudget as exc:
            return self.row(section, case, provider, status=str(exc), **values)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            return self.row(section, case, provider, status="OOM", **values)
        except Exception as exc:  # noqa: BLE001 - reported in the table, the run goes on
            return self.row(section, case, provider, status=f"error: {type(exc).__name__}: {exc}"[:300], **values)
        rates = {name: amount / timing["median_s"] for name, amount in (per_call or {}).items()}
        return self.row(section, case, provider, **timing, **rates, **values)

    def find(self, section: str, case: str, provider_prefix: str) -> dict | None:
        for r in self.rows:
            if (r["section"] == section and r["case"] == case and r["provider"].startswith(provider_prefix)
                    and "median_s" in r):
                return r
        return None

    # ------------------------------------------------------------------ output
    def add_speedups(self) -> None:
        """Each update / fused-step row's speed-up over the reference and over the published-structure
        update of the same size (time of the other / time of this row)."""
        for r in self.rows:
            if r["section"] not in ("update", "fused step") or "median_s" not in r:
                continue
            for key, other in (("speedup_vs_reference", self.find(r["section"], r["case"], "DeviceArray reference")),
                               ("speedup_vs_published_update", self.find("update", r["case"], "published structure"))):
                if other is not None and other is not r:
                    r[key] = other["median_s"] / r["median_s"]

    def write(self) -> str:
        """Write the JSON and both markdown files; return the summary."""
        from rramk import provenance

        self.add_speedups()

        self.cfg.out_dir.mkdir(parents=True, exist_ok=True)
        data = {"session": {"machine": self.facts.get("machine_line") or provenance.machine_line(),
                            "started": self.started, "elapsed_s": round(self.elapsed(), 1),
                            "command": provenance.command_line(), "config": self.cfg.as_dict()},
                "facts": self.facts, "checks": self.checks, "rows": self.rows}
        (self.cfg.out_dir / "gpu_timings.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
        (self.cfg.out_dir / "gpu_timings.md").write_text(full_table(self) + "\n")
        summary = summary_tables(self)
        (self.cfg.out_dir / "gpu_timings_summary.md").write_text(summary + "\n")
        return summary


# ----------------------------------------------------------------------------- sections


def machine_facts(s: Session) -> None:
    from rramk import provenance

    info = provenance.machine()
    s.facts["machine"] = info
    s.facts["machine_line"] = provenance.machine_line(info)
    if s.cfg.device.type == "cuda":
        props = torch.cuda.get_device_properties(0)
        free, total = torch.cuda.mem_get_info()
        s.facts["gpu"] = {"name": props.name, "multiprocessors": props.multi_processor_count,
                          "capability": f"{props.major}.{props.minor}", "total_bytes": total, "free_bytes": free,
                          "cuda": torch.version.cuda}
    s.log(s.facts["machine_line"])


def copy_bandwidth(s: Session) -> None:
    """Bytes read + written per second of one large device-to-device copy (random bytes)."""
    n = s.cfg.copy_bytes
    device = s.cfg.device
    g = torch.Generator(device=device).manual_seed(1)
    src = torch.randint(-128, 128, (n,), generator=g, dtype=torch.int8, device=device)
    dst = torch.full_like(src, 0x7F)
    dst.copy_(src)
    ok = torch.equal(dst, src)
    s.checks.append({"what": "copy", "status": "exact" if ok else "MISMATCH", "ok": ok})
    r = s.timed_row("copy", f"{n / 1e9:.2f} GB", f"torch copy_ ({device.type})", lambda: dst.copy_(src),
                    per_call={"gb_per_s": 2 * n / 1e9}, bytes_moved=2 * n)
    s.facts["copy_gb_per_s"] = r.get("gb_per_s")
    del src, dst


def _fresh_pulses(n: int, device, seed: int) -> torch.Tensor:
    g = torch.Generator(device=device).manual_seed(seed)
    return torch.randint(-14, 15, (n,), generator=g, dtype=torch.int32, device=device)


def _fresh_moments(n: int, device, seed: int):
    """(grad, exp_avg, exp_avg_sq): random, non-zero, v >= 0 (METHOD.md: never time zeros)."""
    g = torch.Generator(device=device).manual_seed(seed)
    grad, m, v = (torch.randn(n, generator=g, device=device) * 1e-3 for _ in range(3))
    return grad, m, v.square_()


def check_device_array(s: Session) -> None:
    """The fast backend against the reference, bit for bit, on fresh random inputs."""
    from rramk import DeviceArray
    from test_bench_xnor import poisoned_call

    cfg, device, n = s.cfg, s.cfg.device, s.cfg.check_synapses
    what = f"DeviceArray {cfg.fast_backend} vs reference, {n} synapses, 2 updates + 2 fused steps"
    try:
        fast = DeviceArray((n,), seed=12345, device=device, backend=cfg.fast_backend)
        ref = DeviceArray((n,), seed=12345, device=device, backend="reference")
        mismatches = []

        def compare(label, extra=()):
            pairs = [(name, getattr(fast, read)(), getattr(ref, read)()) for name, read in (
                ("weights", "weights"), ("pulse counts", "pulse_counts"), ("RTN states", "rtn_states"),
                ("pink terms", "pink_terms"))]
            pairs += list(extra)
            for name, a, b in pairs:
                a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
                if not all(torch.equal(x, y) for x, y in zip(a, b)):
                    mismatches.append(f"{name} after {label}")

        for step in (1, 2):
            pulses = _fresh_pulses(n, device, seed=100 + step)
            poisoned_call(lambda: fast.apply_pulses(pulses), 4 * n, device)
            ref.apply_pulses(pulses)
            compare(f"update {step}")
        _, m_fast, v_fast = _fresh_moments(n, device, seed=200)
        m_ref, v_ref = m_fast.clone(), v_fast.clone()
        for step in (1, 2):
            grad = _fresh_moments(n, device, seed=300 + step)[0]
            poisoned_call(lambda: fast.adam_step(grad, m_fast, v_fast, step=step, lr_pulses=LR_PULSES), 4 * n, device)
            ref.adam_step(grad, m_ref, v_ref, step=step, lr_pulses=LR_PULSES)
            compare(f"fused step {step}", [("exp_avg", m_fast, m_ref), ("exp_avg_sq", v_fast, v_ref)])
        pulsed = int((fast.pulse_counts()[0] + fast.pulse_counts()[1] > 0).sum())
        status = "bitwise equal" if not mismatches else "MISMATCH: " + ", ".join(mismatches)
        if pulsed == 0:
            status = "MISMATCH: no synapse was pulsed (the check compared nothing)"
    except Exception as exc:  # noqa: BLE001 - reported, the run goes on
        status = f"error: {type(exc).__name__}: {exc}"[:300]
        traceback.print_exc()
    s.checks.append({"what": what, "status": status, "ok": status == "bitwise equal"})
    s.facts["device_array_check"] = status
    s.log(f"check: {what}: {status}")


def _published_baseline(shape, device, seed: int):
    """(baseline, where): the published-structure array, its tensors moved to ``device`` when CUDA.

    PublishedStructureArray keeps CPU tensors and a CPU generator; on CUDA its tensors and its
    generator are moved and its calls run under ``torch.device(device)`` (so that its
    ``torch.rand(..., generator=...)`` allocate there). Falls back to the CPU if that fails.
    """
    from published_baseline import PublishedStructureArray

    baseline = PublishedStructureArray(shape, seed=seed)
    if device.type != "cuda":
        return baseline, "cpu"
    try:
        baseline.params = [{k: v.to(device) for k, v in p.items()} for p in baseline.params]
        baseline.state = [t.to(device) for t in baseline.state]
        baseline.taps_oldest_first = baseline.taps_oldest_first.to(device)
        baseline.resistance = [r.to(device) for r in baseline.resistance]
        baseline.generator = torch.Generator(device=device).manual_seed(seed)
        with torch.device(device):
            w = baseline.apply_pulses(_fresh_pulses(baseline.numel, device, seed=5).reshape(shape))
        assert w.device.type == "cuda" and bool(((w == 1) | (w == -1)).all()), "weights are not +-1 on the GPU"
        return baseline, "cuda"
    except Exception as exc:  # noqa: BLE001 - fall back to the CPU, labelled
        print(f"published baseline on CUDA failed ({type(exc).__name__}: {exc}); timing it on the CPU")
        return PublishedStructureArray(shape, seed=seed), "cpu"


def _shape(n: int) -> tuple[int, int]:
    return (n // 1000, 1000) if n % 1000 == 0 and n >= 1000 else (n, 1)


def device_update(s: Session) -> None:
    """apply_pulses: fast backend (API and bare kernel), reference, published structure, per size."""
    from rramk import DeviceArray

    cfg, device = s.cfg, s.cfg.device
    copy_bw = s.facts.get("copy_gb_per_s")
    for n in cfg.synapses:
        shape, case = _shape(n), f"{n:.0e} synapses"
        per_call = {"synapse_updates_per_s": n, "gb_per_s": n * UPDATE_BYTES / 1e9}
        pulses = _fresh_pulses(n, device, seed=n).reshape(shape)

        def run(provider, make):
            try:
                s.ensure_budget()
                fn = make()
            except OutOfBudget as exc:
                return s.row("update", case, provider, status=str(exc), synapses=n)
            except Exception as exc:  # noqa: BLE001
                _free(device)
                return s.row("update", case, provider, status=f"error: {type(exc).__name__}: {exc}"[:300], synapses=n)
            r = s.timed_row("update", case, provider, fn, per_call=per_call, synapses=n)
            if copy_bw and "gb_per_s" in r:
                r["fraction_of_copy"] = r["gb_per_s"] / copy_bw
            return r

        def fast_api():
            array = DeviceArray(shape, seed=1, device=device, backend=cfg.fast_backend)
            s.facts["state_bytes_per_synapse"] = array.state_bytes_per_synapse
            return lambda: array.apply_pulses(pulses)

        run(f"DeviceArray {cfg.fast_backend}", fast_api)
        if device.type == "cuda":
            def kernel_only():
                from rramk import HfOxWeakReset
                from rramk.kernels import weak_reset as kernel

                state = torch.zeros((2, n), dtype=torch.int32, device=device)  # non-zero after the warm-up updates
                pink = torch.zeros((2, n), dtype=torch.float32, device=device)
                weights = torch.empty(n, dtype=torch.int8, device=device)
                flat, config, counter = pulses.reshape(-1), HfOxWeakReset(), itertools.count()
                return lambda: kernel.weak_reset_update(state, pink, flat, weights, config=config, seed=1,
                                                        update=next(counter))

            run("triton kernel (in place)", kernel_only)
        if n <= cfg.reference_max:
            def reference():
                array = DeviceArray(shape, seed=1, device=device, backend="reference")
                return lambda: array.apply_pulses(pulses)

            run("DeviceArray reference", reference)
        if n <= cfg.baseline_max:
            def baseline():
                b, where = _published_baseline(shape, device, seed=1)
                s.facts.setdefault("published_baseline_on", {})[case] = where
                if where == "cuda":
                    def call():
                        with torch.device(device):
                            return b.apply_pulses(pulses)
                    return call
                cpu_pulses = pulses.cpu()
                return lambda: b.apply_pulses(cpu_pulses)

            r = run("published structure", baseline)
            if "median_s" in r:
                r["provider"] += f" ({s.facts['published_baseline_on'][case]})"
        _free(device)


def fused_step(s: Session) -> None:
    """adam_step: fast backend (API and bare kernel) and reference, per size."""
    from rramk import DeviceArray

    cfg, device = s.cfg, s.cfg.device
    copy_bw = s.facts.get("copy_gb_per_s")
    for n in cfg.synapses:
        shape, case = _shape(n), f"{n:.0e} synapses"
        per_call = {"synapse_updates_per_s": n, "gb_per_s": n * FUSED_BYTES / 1e9}
        grad, m0, v0 = (t.reshape(shape) for t in _fresh_moments(n, device, seed=n))

        def run(provider, make):
            try:
                s.ensure_budget()
                fn = make()
            except OutOfBudget as exc:
                return s.row("fused step", case, provider, status=str(exc), synapses=n)
            except Exception as exc:  # noqa: BLE001
                return s.row("fused step", case, provider, status=f"error: {type(exc).__name__}: {exc}"[:300],
                             synapses=n)
            r = s.timed_row("fused step", case, provider, fn, per_call=per_call, synapses=n)
            if copy_bw and "gb_per_s" in r:
                r["fraction_of_copy"] = r["gb_per_s"] / copy_bw
            return r

        def api(backend):
            def make():
                array = DeviceArray(shape, seed=1, device=device, backend=backend)
                m, v, steps = m0.clone(), v0.clone(), itertools.count(1)
                return lambda: array.adam_step(grad, m, v, step=next(steps), lr_pulses=LR_PULSES)
            return make

        run(f"DeviceArray {cfg.fast_backend}", api(cfg.fast_backend))
        if device.type == "cuda":
            def kernel_only():
                from rramk import HfOxWeakReset
                from rramk.kernels import weak_reset_adam as kernel

                state = torch.zeros((2, n), dtype=torch.int32, device=device)
                pink = torch.zeros((2, n), dtype=torch.float32, device=device)
                weights = torch.empty(n, dtype=torch.int8, device=device)
                g, m, v = grad.reshape(-1), m0.clone().reshape(-1), v0.clone().reshape(-1)
                config, counter = HfOxWeakReset(), itertools.count()

                def call():
                    k = next(counter)
                    kernel.weak_reset_adam_step(g, m, v, state, pink, weights, config=config, seed=1, update=k,
                                                step=k + 1, lr_pulses=LR_PULSES)
                return call

            run("triton kernel (in place)", kernel_only)
        if n <= cfg.reference_max:
            run("DeviceArray reference", api("reference"))
        del grad, m0, v0
        _free(device)


def memory_fit(s: Session) -> None:
    """Whether 1e9 synapses and their Adam moments fit in this GPU's memory (computed)."""
    state = s.facts.get("state_bytes_per_synapse")
    if state is None:
        from rramk import DeviceArray

        state = DeviceArray((1,), backend="reference").state_bytes_per_synapse
    n = 10**9
    persistent = n * (state + MOMENT_BYTES)
    with_step_inputs = persistent + n * (4 + 1)  # + float32 gradient, int8 weights
    api_peak = with_step_inputs + n * state  # DeviceArray.adam_step clones the state for its result
    total = s.facts.get("gpu", {}).get("total_bytes")
    fact = {"synapses": n, "state_bytes_per_synapse": state, "moment_bytes_per_synapse": MOMENT_BYTES,
            "persistent_bytes": persistent, "with_gradient_and_weights_bytes": with_step_inputs,
            "deviceArray_adam_step_peak_bytes": api_peak, "gpu_total_bytes": total,
            "fits": None if total is None else {"persistent": persistent <= total,
                                                "with_gradient_and_weights": with_step_inputs <= total,
                                                "DeviceArray adam_step peak": api_peak <= total}}
    s.facts["memory_1e9"] = fact
    s.log(f"memory: {_memory_line(fact)}")


def _memory_line(f: dict) -> str:
    gb = 1e9
    text = (f"1e9 synapses: state {f['state_bytes_per_synapse']} B + moments {f['moment_bytes_per_synapse']} B/synapse "
            f"= {f['persistent_bytes'] / gb:.0f} GB; with gradient and int8 weights "
            f"{f['with_gradient_and_weights_bytes'] / gb:.0f} GB; DeviceArray.adam_step peak (state cloned) "
            f"{f['deviceArray_adam_step_peak_bytes'] / gb:.0f} GB")
    if f["gpu_total_bytes"]:
        fits = f["fits"]
        text += (f"; GPU memory {f['gpu_total_bytes'] / gb:.0f} GB: "
                 + ", ".join(f"{k} {'fits' if v else 'does NOT fit'}" for k, v in fits.items()))
    return text


def binary_matmul(s: Session, bench) -> None:
    """Every case x provider of test_bench_xnor_matmul, checked (poisoned output) then timed."""
    cfg, device = s.cfg, s.cfg.device
    chosen = {}
    for case_id, (layer, batch) in bench.cases("gpu").items():
        if batch in cfg.batches and (not cfg.layers or any(p in case_id for p in cfg.layers)):
            chosen[case_id] = (layer, batch)
    ordered = sorted(chosen.items(), key=lambda kv: (kv[1][0].is_conv, kv[1][1]))  # FC first, small batch first
    n_exact = n_wrong = 0
    for case_id, (layer, batch) in ordered:
        m, n, k = layer.mnk(batch)
        values = {"m": m, "n": n, "k": k, "batch": batch, "layer": f"{layer.model}.{layer.name}",
                  "layer_kind": "conv" if layer.is_conv else "fc"}
        names = bench.providers(layer, device)
        try:
            s.ensure_budget()
            x, w = bench.sign_operands(layer, batch, device)
            ref = bench.reference_result(layer, x, w)
        except Exception as exc:  # noqa: BLE001 - budget, OOM or error: every provider's row says so
            status = str(exc) if isinstance(exc, OutOfBudget) else f"error: {type(exc).__name__}: {exc}"[:300]
            for provider in names:
                s.row("binary matmul", case_id, provider, status=status, **values)
            _free(device)
            continue
        for provider in names:
            reason = bench.skip_reason(provider, layer, batch)
            if reason:
                s.row("binary matmul", case_id, provider, status=f"n/a: {reason}", **values)
                continue
            try:
                s.ensure_budget()
                call, info = bench.make_call(provider, layer, x, w)
                out = bench.poisoned_call(call, bench.output_bytes(layer, batch), device)
                bench.check_output(out, ref, provider=provider, case_id=case_id)
                del out
            except OutOfBudget as exc:
                s.row("binary matmul", case_id, provider, status=str(exc), **values)
                continue
            except AssertionError as exc:
                n_wrong += 1
                s.row("binary matmul", case_id, provider, status=f"WRONG: {exc}"[:400], **values)
                continue
            except Exception as exc:  # noqa: BLE001
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                s.row("binary matmul", case_id, provider, status=f"error: {type(exc).__name__}: {exc}"[:300], **values)
                continue
            n_exact += 1
            check = "within bf16 rounding" if provider == "torch-bf16" else "exact"
            s.timed_row("binary matmul", case_id, provider, call, per_call={"tops": 2 * m * n * k / 1e12},
                        check=check, **values, **info)
            del call
        del x, w, ref
        _free(device)
    s.checks.append({"what": "binary products against torch's float result (output poisoned first)",
                     "status": f"{n_exact} right, {n_wrong} WRONG", "ok": n_wrong == 0})


def _free(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- tables


def _ms(r: dict) -> str:
    if "median_s" not in r:
        return ""
    t = r["median_s"]
    return f"{t * 1e3:.3f} ms" if t < 1 else f"{t:.2f} s"


def _num(value, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def full_table(s: Session) -> str:
    """Every row, every figure: gpu_timings.md."""
    lines = ["# GPU timings: every row", "", f"{s.facts.get('machine_line', '')}; started {s.started}; "
             f"{s.elapsed():.0f} s", "", "| section | case | provider | median | reps | GB/s | % copy | "
             "synapse-upd/s | TOPS | vs reference | vs published update | status / check |", "|" + "---|" * 12]
    for r in s.rows:
        status = r["status"] if r["status"] != "ok" else r.get("check", "ok")
        lines.append("| " + " | ".join([
            r["section"], r["case"], r["provider"], _ms(r), str(r.get("reps", "")), _num(r.get("gb_per_s"), ".1f"),
            _num(None if r.get("fraction_of_copy") is None else 100 * r["fraction_of_copy"], ".1f"),
            _num(r.get("synapse_updates_per_s"), ".3g"), _num(r.get("tops"), ".3g"),
            _num(r.get("speedup_vs_reference"), ".1f"), _num(r.get("speedup_vs_published_update"), ".1f"),
            status.replace("|", "/").replace("\n", " ")]) + " |")
    return "\n".join(lines)


MATMUL_COLUMNS = (("torch-bf16", "bf16"), ("torch-f32", "f32"), ("torch-int8", "int8"),
                  ("rramk-xnor-packs-input", "xnor pack-in"), ("rramk-xnor-prepacked", "xnor prepacked"),
                  ("rramk-xnor-conv2d", "xnor conv"), ("rramk-tensor-core", "tensor-core"),
                  ("rramk-binary-matmul-auto", "auto"), ("rramk-ref-xnor-packs-input", "ref pack-in"),
                  ("rramk-ref-xnor-prepacked", "ref prepacked"), ("rramk-ref-xnor-conv2d", "ref conv"))


def _cell(r: dict | None) -> str:
    if r is None:
        return "-"
    if "tops" in r:
        return f"{r['tops']:.3g}"
    status = r["status"]
    for prefix, short in (("n/a", "n/a"), ("skipped", "budget"), ("WRONG", "WRONG"), ("OOM", "OOM")):
        if status.startswith(prefix):
            return short
    return "ERR"


def summary_tables(s: Session) -> str:
    f = s.facts
    copy = f.get("copy_gb_per_s")
    lines = [f"## GPU timings: {f.get('machine_line', '')}",
             f"started {s.started}, {s.elapsed():.0f} s; dry run: {s.cfg.dry_run}; "
             "every row: gpu_timings.md / .json",
             f"copy bandwidth (torch copy_, read + written): {copy:.0f} GB/s" if copy else "copy bandwidth: not measured"]
    for c in s.checks:
        lines.append(f"check: {c['what']}: {c['status']}")
    if "memory_1e9" in f:
        lines.append("memory: " + _memory_line(f["memory_1e9"]))
    problems = [r for r in s.rows if r["status"].startswith(("error", "WRONG", "OOM"))]
    for r in problems[:6]:
        lines.append(f"problem: {r['section']} {r['case']} {r['provider']}: {r['status'][:160]}")
    if len(problems) > 6:
        lines.append(f"problem: {len(problems) - 6} more in gpu_timings.md")
    where = f.get("published_baseline_on")
    if where:
        lines.append("published structure timed on: " + ", ".join(f"{k}: {v}" for k, v in where.items()))
    fast = f"DeviceArray {s.cfg.fast_backend}"
    for r in s.rows:
        if r["section"] == "fused step" and r["provider"] == fast and "speedup_vs_published_update" in r:
            lines.append(f"fused step ({fast}) against the published-structure update, {r['case']}: "
                         f"{r['speedup_vs_published_update']:.1f}x faster (time of published / time of fused)")
    lines += ["", "GB/s: bytes the operation must move (B/synapse in the first column) / time; % copy: of the copy "
              "bandwidth; vs ...: speed-up, time of that row / time of this one.",
              "", "| op (B/synapse) | synapses | provider | median | GB/s | % copy | G syn-upd/s | vs reference | "
              "vs published update |", "|---|---|---|---|---|---|---|---|---|"]
    for section, nbytes in (("update", UPDATE_BYTES), ("fused step", FUSED_BYTES)):
        for r in (r for r in s.rows if r["section"] == section):
            ok = "median_s" in r
            lines.append("| " + " | ".join([
                f"{section} ({nbytes})", r["case"], r["provider"], _ms(r) if ok else r["status"][:60],
                _num(r.get("gb_per_s"), ".0f"),
                _num(None if r.get("fraction_of_copy") is None else 100 * r["fraction_of_copy"], ".0f"),
                _num(None if not ok else r["synapse_updates_per_s"] / 1e9, ".3g"),
                _num(r.get("speedup_vs_reference"), ".1f"), _num(r.get("speedup_vs_published_update"), ".1f")])
                + " |")
    mm = [r for r in s.rows if r["section"] == "binary matmul"]
    if mm:
        present = [(p, short) for p, short in MATMUL_COLUMNS if any(r["provider"] == p for r in mm)]
        lines += ["", "Binary products, TOPS = 2 M N K / median time (n/a: shape not supported; WRONG: failed its "
                  "check, not timed; ERR: see gpu_timings.md). rramk/torch: best rramk over best torch.",
                  "", "| case | M x N x K | " + " | ".join(short for _, short in present) + " | rramk/torch |",
                  "|---|---|" + "---|" * (len(present) + 1)]
        for case in dict.fromkeys(r["case"] for r in mm):
            by_provider = {r["provider"]: r for r in mm if r["case"] == case}
            first = next(iter(by_provider.values()))
            best = {side: max((r["tops"] for p, r in by_provider.items() if p.startswith(side) and "tops" in r),
                              default=None) for side in ("rramk", "torch")}
            ratio = f"{best['rramk'] / best['torch']:.2f}" if best["rramk"] and best["torch"] else ""
            auto = by_provider.get("rramk-binary-matmul-auto", {})
            cells = [_cell(by_provider.get(p)) + (f" ({auto['path']})" if p == "rramk-binary-matmul-auto"
                                                  and "path" in auto and "tops" in auto else "")
                     for p, _ in present]
            lines.append(f"| {case} | {first['m']} x {first['n']} x {first['k']} | " + " | ".join(cells)
                         + f" | {ratio} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def _pytest_stand_in() -> types.ModuleType:
    """Just enough of pytest for bench/conftest.py and the benchmark module to import without it."""
    module = types.ModuleType("pytest")

    class _Mark:
        def __getattr__(self, name):
            return lambda *args, **kwargs: (lambda fn: fn)

    def fixture(*args, **kwargs):
        if args and callable(args[0]):
            return args[0]
        return lambda fn: fn

    module.mark = _Mark()
    module.fixture = fixture
    module.param = lambda *values, **kwargs: values
    module.UsageError = type("UsageError", (Exception,), {})

    def skip(reason=""):
        raise RuntimeError(f"skip: {reason}")

    module.skip = skip
    return module


def import_bench_module():
    """bench/test_bench_xnor_matmul.py as a module (its shapes and providers), pytest or not."""
    sys.path.insert(0, str(BENCH))
    try:
        import pytest  # noqa: F401
    except ImportError:
        sys.modules["pytest"] = _pytest_stand_in()
    threads = torch.get_num_threads()
    import test_bench_xnor as bench

    torch.set_num_threads(threads)  # bench/conftest.py caps torch's threads for the 2-core CPU size set
    return bench


def main() -> int:
    cfg = Config()
    if not cfg.dry_run and not torch.cuda.is_available():
        print("gpu_timings: no CUDA device (GPU_CHECK_DRY_RUN=1 runs the tiny CPU version)", file=sys.stderr)
        return 2
    if cfg.dry_run:
        torch.set_num_threads(1)  # the shared CPU: see test_bench_xnor_matmul.CPU_THREADS
    session = Session(cfg)

    def on_term(signum, frame):
        raise SystemExit(f"gpu_timings: stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    rc = 0
    try:
        bench = import_bench_module()
        machine_facts(session)
        for name, section in (("copy bandwidth", copy_bandwidth), ("DeviceArray check", check_device_array),
                              ("device update", device_update), ("fused step", fused_step),
                              ("memory", memory_fit)):
            session.log(f"--- {name}")
            section(session)
            session.write()
        if cfg.matmul:
            session.log("--- binary matmul")
            binary_matmul(session, bench)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        rc = 124
    except Exception:  # noqa: BLE001 - write what was measured, then fail
        traceback.print_exc()
        rc = 1
    finally:
        summary = session.write()
        session.log(f"wrote {cfg.out_dir}/gpu_timings.json, gpu_timings.md, gpu_timings_summary.md")
        if cfg.print_table:
            print()
            print(summary, flush=True)
    failed = [c["what"] for c in session.checks if not c["ok"]]
    if failed:
        print("gpu_timings: checks FAILED: " + "; ".join(failed), file=sys.stderr)
    return rc or (3 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
