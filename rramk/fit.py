"""Bring your own device: fit a weak-RESET preset to measured traces.

    python -m rramk.fit TRACES --out PRESET.json [--report DIR] [--criterion aic|bic]
    python -m rramk.fit --demo DIR [--devices 300]

TRACES is a CSV file with a header and the columns ``device,pulse,resistance`` (one row per
read: device identifier, cumulative weak-RESET pulses since its SET, resistance in ohm), or a
.npz with those three arrays (``rramk.device.traces``). The fit (``rramk.device.preset_fit``)
estimates each device's R0 + c1, m1, t*, m2, the device-to-device family of each, the 1/f
amplitude and order and the RTN amplitudes and switching probabilities; it prints a summary and
writes the preset (JSON with units and provenance: ``rramk.load_preset`` reads it). ``--report``
adds the goodness-of-fit report: measured against simulated median and 10-90% band of ln R,
histograms of the per-device values against the chosen distributions, the residual power
spectrum against the fitted 1/f model, and RTN dwell-time histograms.

``--demo DIR`` proves the fit on devices rramk simulates itself, where the truth is known: the
published preset and two far from it (``DEMO_CASES``), a recovery table (``recovery.md``) and
each case's report. Bad input: one line naming the row or device, exit status 2.
"""

from __future__ import annotations

from . import cli

if __name__ == "__main__":
    cli.prepare_process()  # before torch loads

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import provenance
from .device.config import HfOxWeakReset
from .device.distributions import TruncatedExponential, TruncatedLognormal, TruncatedNormal, Uniform

LEVELS = (0.1, 0.25, 0.5, 0.75, 0.9)
UNITS = {"m1": "1/pulse", "t_star": "pulses", "m2": "1/pulse", "c1": "ln R", "a_rtn": "ln R"}


@dataclass(frozen=True)
class DemoCase:
    """Simulated traces with a known truth: ``devices`` devices of ``config``, trace lengths drawn
    uniformly in ``lengths`` (pulses), ``pulses_per_update`` pulses per update, each device read
    after every update or every ``read_every[1]``-th (drawn per device)."""

    name: str
    config: HfOxWeakReset
    lengths: tuple[int, int]
    pulses_per_update: int
    read_every: tuple[int, int]
    seed: int
    description: str

    def simulate(self, devices: int = 300, backend: str = "reference"):
        from .device.traces import simulate_traces

        rng = np.random.default_rng(self.seed)
        lengths = rng.integers(self.lengths[0], self.lengths[1] + 1, devices)
        every = rng.integers(self.read_every[0], self.read_every[1] + 1, devices)
        return simulate_traces(self.config, lengths, pulses_per_update=self.pulses_per_update, read_every=every,
                               seed=self.seed, backend=backend)


DEMO_CASES = (
    DemoCase("published", HfOxWeakReset(), (400, 2000), 2, (1, 2), 11,
             "the published fit (MODEL.md): knees around 600 pulses, censored in short traces; reads every 2 or "
             "4 pulses"),
    DemoCase("fast", HfOxWeakReset(
        m1=TruncatedLognormal(s=0.5, loc=0.0, scale=2e-3, low=5e-4, high=8e-3, mean_truncated=2.2e-3),
        t_star=TruncatedNormal(loc=250.0, scale=80.0, low=60.0, high=500.0, mean_truncated=250.0),
        c1=Uniform(low=-0.1, high=0.1, mean_truncated=0.0),
        m2=TruncatedNormal(loc=1e-4, scale=4e-5, low=1e-5, high=2.5e-4, mean_truncated=1e-4),
        r0=TruncatedNormal(loc=20000.0, scale=1500.0, low=16000.0, high=24000.0, mean_truncated=20000.0),
        a_rtn=Uniform(low=0.2, high=0.8, mean_truncated=0.5),
        pink_alpha=0.04), (300, 1200), 1, (1, 1), 12,
        "3x steeper, early knees (normal), 4x steeper saturated slope, R0 ~ 20 kOhm, 1.6x the 1/f amplitude, "
        "RTN amplitudes 0.2-0.8; reads every pulse"),
    DemoCase("slow", HfOxWeakReset(
        m1=TruncatedExponential(loc=1e-5, scale=2e-4, low=1e-5, high=2e-3, mean_truncated=2e-4),
        t_star=TruncatedLognormal(s=0.4, loc=0.0, scale=1500.0, low=400.0, high=4000.0, mean_truncated=1600.0),
        c1=TruncatedNormal(loc=0.0, scale=0.12, low=-0.35, high=0.35, mean_truncated=0.0),
        m2=TruncatedExponential(loc=0.0, scale=5e-6, low=0.0, high=4e-5, mean_truncated=5e-6),
        r0=TruncatedNormal(loc=3000.0, scale=150.0, low=2600.0, high=3400.0, mean_truncated=3000.0),
        a_rtn=Uniform(low=0.0, high=1.0, mean_truncated=0.5),
        pink_alpha=0.012, pink_d=0.65, rtn_p01=2e-4, rtn_p10=1e-3), (1500, 5000), 4, (1, 1), 13,
        "3x shallower, late knees (many censored), 6x flatter saturated slope, wider c1, R0 ~ 3 kOhm, half the "
        "1/f amplitude with d = 0.65, rare RTN up to 1.0; reads every 4 pulses"),
)


# ---------------------------------------------------------------------------------------------- recovery

def true_table(config: HfOxWeakReset, name: str) -> np.ndarray:
    """The values the simulator draws a parameter from (its 1024 quantiles; for c1, ln R0 + c1 over
    both tables, since only the sum shows in a trace), ascending."""
    q = lambda dist: np.sort(dist.quantile_table(1024).numpy())  # noqa: E731
    if name == "c1":
        return np.sort((np.log(q(config.r0))[:, None] + q(config.c1)[None, :]).ravel())
    return q(getattr(config, name))


def recovery(true: HfOxWeakReset, fit, k: float = 4.0) -> list[dict]:
    """Each fitted parameter's quantiles q in LEVELS read through the true CDF: F_true(x_q) - q, and
    the bound k sqrt(q (1 - q) / n) with n the devices that inform it. For A_rtn the truth is taken
    above the fitted lower end (amplitudes of a few 1/f sigma cannot be seen, and do not matter)."""
    rows = []
    for name, pf in fit.parameters.items():
        fitted = np.sort(pf.chosen.quantile_table(1024).numpy())
        truth = true_table(true, name)
        if name == "c1":
            fitted = fitted + math.log(fit.r0)
        floor = 0.0
        if name == "a_rtn":
            floor = np.searchsorted(truth, pf.chosen.low, side="left") / len(truth)
        n = max(pf.informative, 1)
        for q in LEVELS:
            x = fitted[min(int(q * 1024), 1023)]
            f = np.searchsorted(truth, x, side="right") / len(truth)
            f = (f - floor) / (1 - floor)
            bound = k * math.sqrt(q * (1 - q) / n)
            rows.append({"parameter": name, "level": q, "error": f - q, "bound": bound, "devices": n,
                         "family": pf.family, "true_family": type(getattr(true, name)).__name__})
    return rows


def noise_recovery(true: HfOxWeakReset, fit, k: float = 4.0) -> list[dict]:
    """alpha, d, p01, p10: fitted against true, with a bound on |ln(fitted / true)|: for p01 and p10
    k / sqrt(switches per direction) plus 0.15 (the tempered chain merges short dwells,
    ``rramk.device.preset_fit``); for alpha 0.05, for d 0.05 in d."""
    half = max(fit.rtn.transitions / 2, 1.0)
    rows = []
    for name, bound in (("pink_alpha", 0.05), ("pink_d", 0.05), ("rtn_p01", k / math.sqrt(half) + 0.15),
                        ("rtn_p10", k / math.sqrt(half) + 0.15)):
        t, f = getattr(true, name), getattr(fit.config, name)
        error = f - t if name == "pink_d" else math.log(f / t)
        rows.append({"parameter": name, "true": t, "fitted": f, "error": error, "bound": bound})
    return rows


def statistics(traces, config: HfOxWeakReset, at, *, devices: int = 4000, seed: int = 1, k: float = 4.0):
    """ln R of the traces against ``devices`` simulated from ``config`` at the pulse counts ``at``: per count
    and q in (0.1, 0.5, 0.9), F_sim(data quantile) - q and its bound k sqrt(q (1 - q) (1/n + 1/N))."""
    from .device.traces import reads_at, simulate_reads

    data = reads_at(traces, at)
    sim = simulate_reads(config, [c for c in at if len(data[c])], devices, seed=seed)
    rows = []
    for count, values in data.items():
        if len(values) < 20:
            continue
        s = np.sort(sim[count])
        for q in (0.1, 0.5, 0.9):
            x = np.quantile(values, q)
            f = np.searchsorted(s, x) / len(s)
            rows.append({"pulses": count, "level": q, "data": x, "simulated": float(np.quantile(s, q)),
                         "error": f - q, "bound": k * math.sqrt(q * (1 - q) * (1 / len(values) + 1 / len(s))),
                         "devices": len(values)})
    return rows


# ---------------------------------------------------------------------------------------------- the report

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def band_counts(traces, points: int = 80, min_devices: int = 20) -> list[int]:
    """Pulse counts where at least ``min_devices`` devices have a read, at most ``points`` of them."""
    counts, n = np.unique(np.concatenate(traces.pulses), return_counts=True)
    counts = counts[n >= min_devices]
    if len(counts) > points:
        counts = counts[np.unique(np.linspace(0, len(counts) - 1, points).round().astype(int))]
    return [int(c) for c in counts]


def plot_band(path: Path, traces, config, title: str) -> None:
    from .device.traces import reads_at, simulate_reads

    at = band_counts(traces)
    data = reads_at(traces, at)
    sim = simulate_reads(config, at, 2000, seed=2)
    qd = np.array([np.quantile(data[c], (0.1, 0.5, 0.9)) for c in at])
    qs = np.array([np.quantile(sim[c], (0.1, 0.5, 0.9)) for c in at])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=130)
    ax.fill_between(at, qs[:, 0], qs[:, 2], color="tab:orange", alpha=0.25, lw=0, label="fitted preset, 10-90%")
    ax.plot(at, qs[:, 1], color="tab:orange", lw=2, label="fitted preset, median")
    ax.plot(at, qd[:, 0], color="k", lw=1, ls="--", label="traces, 10% and 90%")
    ax.plot(at, qd[:, 2], color="k", lw=1, ls="--")
    ax.plot(at, qd[:, 1], color="k", lw=1.5, label="traces, median")
    ax.set_xlabel("cumulative weak-RESET pulses")
    ax.set_ylabel("ln(R / 1 ohm)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_parameters(path: Path, fit, title: str, true: HfOxWeakReset | None = None) -> None:
    import torch

    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(10, 6), dpi=130)
    for ax, (name, pf) in zip(axes.flat, fit.parameters.items()):
        values = pf.values[np.isfinite(pf.values)]
        if len(values):
            ax.hist(values, bins=30, density=True, color="tab:blue", alpha=0.45,
                    label=f"{len(values)} devices' fits")
        dist = pf.chosen
        if dist.high > dist.low:
            x = torch.linspace(dist.low, dist.high, 400, dtype=torch.float64)
            ax.plot(x.numpy(), dist.pdf(x).numpy(), color="tab:orange", lw=1.6, label=f"chosen: {pf.family}")
        if true is not None and name != "c1":
            d = getattr(true, name)
            x = torch.linspace(d.low, d.high, 400, dtype=torch.float64)
            ax.plot(x.numpy(), d.pdf(x).numpy(), color="k", lw=1, ls="--", label=f"truth: {type(d).__name__}")
        ax.set_title(f"{name} ({UNITS[name]})", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
        ax.legend(fontsize=6, frameon=False)
    axes.flat[-1].axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def residual_spectrum(fit, segment: int = 64):
    """(frequencies per pulse, measured PSD, model PSD, read spacing, fitted log-log slope, model slope):
    Welch periodograms of state-0 residual runs at the most common read spacing, against the 1/f term's
    spectrum alpha^2 (1 - k) / 12 |sum_k b_k e^(-2 pi i f k)|^2 sampled at that spacing."""
    from .device.preset_fit import pink_coefficients

    gaps = np.concatenate([np.diff(t) for t in fit.traces.pulses])
    spacing = int(np.bincount(gaps.astype(np.int64)).argmax())
    cfg = fit.config
    psd, count = np.zeros(segment // 2 + 1), 0
    window = np.hanning(segment)
    for t, r, s0 in zip(fit.traces.pulses, fit.residuals, fit.rtn.state0):
        ok = (t >= cfg.pink_order) & (s0 > 0.99)
        good = ok[1:] & ok[:-1] & (np.diff(t) == spacing)
        run = 0
        for i, g in enumerate(np.concatenate([good, [False]])):
            if g:
                run += 1
                continue
            for start in range(i - run, i - segment + 1, segment):
                x = r[start:start + segment]
                x = (x - x.mean()) * window
                psd += np.abs(np.fft.rfft(x)) ** 2 / np.sum(window ** 2)
                count += 1
            run = 0
    freqs = np.fft.rfftfreq(segment, d=spacing)
    b = pink_coefficients(cfg.pink_order, cfg.pink_d)
    lags = np.arange(0, cfg.pink_order, spacing)
    full = np.correlate(b, b, mode="full")[len(b) - 1:]
    cov = cfg.pink_alpha ** 2 / 12 * full[lags]
    model = cov[0] + 2 * sum(cov[j] * np.cos(2 * np.pi * freqs * spacing * j) for j in range(1, len(lags)))
    if count == 0:
        return freqs, None, model, spacing, math.nan, math.nan
    psd /= count
    band = (freqs > 2 / (segment * spacing)) & (freqs < 0.25 / spacing)
    slope = float(np.polyfit(np.log(freqs[band]), np.log(psd[band]), 1)[0])
    model_slope = float(np.polyfit(np.log(freqs[band]), np.log(model[band]), 1)[0])
    return freqs, psd, model, spacing, slope, model_slope


def plot_spectrum(path: Path, fit, title: str) -> tuple[float, float]:
    freqs, psd, model, spacing, slope, model_slope = residual_spectrum(fit)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4.0), dpi=130)
    if psd is not None:
        ax.loglog(freqs[1:], psd[1:], "o-", ms=3, color="k", lw=1,
                  label=f"residuals (state 0), slope {slope:.2f}")
    ax.loglog(freqs[1:], model[1:], color="tab:orange", lw=1.8,
              label=f"fitted 1/f term (alpha {fit.config.pink_alpha:.3g}, d {fit.config.pink_d:.2f}), "
                    f"slope {model_slope:.2f}")
    ax.set_xlabel(f"frequency (1/pulse; reads every {spacing} pulse{'s' if spacing > 1 else ''})")
    ax.set_ylabel("power (ln R)^2 per read")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return slope, model_slope


def dwell_times(fit):
    """Complete dwells (pulses) in RTN state 0 and 1 of the devices with RTN (P(state 1) > 1/2), and the
    spans of their chains (for the model's expectation)."""
    dwells, spans = {0: [], 1: []}, []
    order = fit.config.pink_order
    for t, s0, seen in zip(fit.traces.pulses, fit.rtn.state0, fit.rtn.detected):
        if not seen:
            continue
        keep = t >= order
        t, state = t[keep], (s0[keep] < 0.5).astype(int)
        if len(t) < 2:
            continue
        spans.append(float(t[-1] - t[0]))
        change = np.flatnonzero(np.diff(state)) + 1
        for a, b in zip(change[:-1], change[1:]):
            dwells[state[a]].append(float(t[b] - t[a]))
    return {k: np.array(v) for k, v in dwells.items()}, np.array(spans)


def plot_dwells(path: Path, fit, title: str) -> None:
    dwells, spans = dwell_times(fit)
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), dpi=130)
    for ax, state, p in ((axes[0], 0, fit.config.rtn_p01), (axes[1], 1, fit.config.rtn_p10)):
        values = dwells[state]
        if len(values) == 0:
            ax.set_title(f"state {state}: no complete dwell", fontsize=9)
            continue
        bins = np.linspace(0, max(np.quantile(values, 0.98), 1), 25)
        ax.hist(values, bins=bins, color="tab:blue", alpha=0.5, label=f"{len(values)} complete dwells")
        k = (bins[1:] + bins[:-1]) / 2
        density = p * np.exp(-p * k) * np.maximum(spans[:, None] - k[None, :], 0).sum(0)  # geometric x fits a trace
        if density.sum() > 0:
            expected = density * np.diff(bins) / np.sum(density * np.diff(bins)) * len(values)
            ax.plot(k, expected, color="tab:orange", lw=1.8, label=f"geometric, p = {p:.2g}/pulse")
        ax.set_yscale("log")
        ax.set_xlabel(f"dwell in state {state} (pulses)")
        ax.set_ylabel("dwells")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title + " (model: geometric dwells, weighted by the chance that a dwell fits in a trace)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(out: Path, fit, *, name: str, title: str, command: str | None = None,
                 true: HfOxWeakReset | None = None) -> list[Path]:
    """The goodness-of-fit report of one fit: ``{name}_report.md`` and four figures in ``out``."""
    from tabulate import tabulate

    out.mkdir(parents=True, exist_ok=True)
    files = [out / f"{name}_{kind}.png" for kind in ("lnr_band", "parameters", "spectrum", "rtn_dwells")]
    plot_band(files[0], fit.traces, fit.config, f"{title}: ln R, traces against the fitted preset")
    plot_parameters(files[1], fit, f"{title}: per-device fits and the chosen distributions", true)
    slope, model_slope = plot_spectrum(files[2], fit, f"{title}: residual power spectrum")
    plot_dwells(files[3], fit, f"{title}: RTN dwell times")
    at = band_counts(fit.traces, points=8)
    rows = statistics(fit.traces, fit.config, at)
    lines = [provenance.header(f"Fit of a weak-RESET preset: {title}", command), ""]
    lines.append(f"Traces: {fit.traces.source or 'simulated'}"
                 + (f" (SHA-256 {fit.traces.sha256})" if fit.traces.sha256 else "") + "\n")
    lines.append("## Preset\n\n```\n" + fit.summary() + "\n```\n")
    lines.append("## ln R of the traces against 4000 devices simulated from the fitted preset\n")
    lines.append("Per pulse count and level q: the traces' quantile, the simulation's, and F_sim(traces' quantile) "
                 "- q against 4 sqrt(q(1-q)(1/n + 1/N)).\n")
    lines.append(tabulate([[r["pulses"], r["devices"], r["level"], f"{r['data']:.4f}", f"{r['simulated']:.4f}",
                            f"{r['error']:+.3f}", f"{r['bound']:.3f}", "yes" if abs(r["error"]) <= r["bound"] else "NO"]
                           for r in rows], headers=["pulses", "devices", "q", "traces", "simulated", "error",
                                                    "bound", "within"], tablefmt="github"))
    lines.append(f"\nResidual spectrum: log-log slope {slope:.2f} measured, {model_slope:.2f} for the fitted 1/f "
                 "term (same band).\n")
    lines.append("Figures: " + ", ".join(f"`{f.name}`" for f in files) + "\n")
    report = out / f"{name}_report.md"
    report.write_text("\n".join(lines))
    return [report, *files]


def write_recovery(out: Path, results: list, command: str | None = None) -> Path:
    """``recovery.md``: every demo case's parameters and noise, fitted against the truth."""
    from tabulate import tabulate

    lines = [provenance.header("Recovery of known presets by rramk.fit", command), ""]
    lines.append("Each case: devices simulated with rramk (DeviceArray, one update per read, reference backend), "
                 "fitted by `rramk.fit_preset`. For each parameter, the fitted distribution's quantile x_q at "
                 "level q, read through the true distribution: F_true(x_q) - q, against the bound "
                 "4 sqrt(q(1-q)/n), n = devices that inform the parameter. c1 is compared as ln R0 + c1 (what "
                 "a trace shows); A_rtn above the fitted lower end (smaller amplitudes hide in the 1/f noise).\n")
    for case, fit, rows, noise, stats in results:
        lines.append(f"## {case.name}: {case.description}\n")
        lines.append(f"{len(fit.devices)} devices, {fit.traces.reads} reads, lengths {case.lengths[0]}-"
                     f"{case.lengths[1]} pulses.\n")
        table = []
        for name in fit.parameters:
            r = [x for x in rows if x["parameter"] == name]
            table.append([name, r[0]["true_family"], r[0]["family"], r[0]["devices"],
                          *(f"{x['error']:+.3f}" for x in r), f"{r[0]['bound']:.3f}",
                          "yes" if all(abs(x["error"]) <= x["bound"] for x in r) else "NO"])
        lines.append(tabulate(table, headers=["parameter", "true family", "chosen", "devices",
                                              *(f"q={q}" for q in LEVELS), "bound q=0.1", "within"],
                              tablefmt="github"))
        lines.append("")
        lines.append(tabulate([[x["parameter"], f"{x['true']:.4g}", f"{x['fitted']:.4g}", f"{x['error']:+.3f}",
                                f"{x['bound']:.3f}", "yes" if abs(x["error"]) <= x["bound"] else "NO"]
                               for x in noise],
                              headers=["noise", "true", "fitted", "error (ln ratio; d: difference)", "bound",
                                       "within"], tablefmt="github"))
        worst = max(stats, key=lambda r: abs(r["error"]) / r["bound"])
        lines.append(f"\nln R of the traces against the fitted preset at {len({r['pulses'] for r in stats})} pulse "
                     f"counts x 3 levels: {sum(abs(r['error']) <= r['bound'] for r in stats)} of {len(stats)} "
                     f"within bounds (worst: {worst['error']:+.3f} at {worst['pulses']} pulses, q={worst['level']}, "
                     f"bound {worst['bound']:.3f}).\n")
    path = out / "recovery.md"
    path.write_text("\n".join(lines))
    return path


# ---------------------------------------------------------------------------------------------- command line

def parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m rramk.fit",
                   description="Fit a weak-RESET device preset (rramk.HfOxWeakReset as JSON) to measured traces: a "
                               "CSV with the columns device,pulse,resistance (or a .npz of those arrays).")
    p.add_argument("traces", nargs="?", type=Path, help="CSV (device,pulse,resistance) or .npz of traces")
    p.add_argument("--out", type=Path, help="where to write the preset (JSON)")
    p.add_argument("--report", type=Path, help="directory for the goodness-of-fit report (markdown and figures)")
    p.add_argument("--criterion", choices=("aic", "bic"), default="aic",
                   help="how each parameter's family is chosen (default aic)")
    p.add_argument("--demo", type=Path, metavar="DIR",
                   help="fit simulated devices of known presets instead, and write the recovery table and reports")
    p.add_argument("--devices", type=int, default=300, help="devices per demo case (default 300)")
    return p


def fit_file(args) -> int:
    from .device.preset import save_preset
    from .device.preset_fit import fit_preset
    from .device.traces import TraceError, read_traces

    try:
        traces = read_traces(args.traces)
    except TraceError as e:
        print(f"rramk.fit: {e}", file=sys.stderr)
        return 2
    print(f"{len(traces)} devices, {traces.reads} reads from {args.traces}", flush=True)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"rramk.fit: cannot create the directory of --out {args.out}: {e.strerror}", file=sys.stderr)
        return 2
    fit = fit_preset(traces, criterion=args.criterion, progress=lambda text: print(f"  {text}", flush=True))
    print(fit.summary())
    source = {"source": str(args.traces), "sha256": traces.sha256, "fit_date": provenance.today(),
              "command": provenance.command_line(), "machine": provenance.machine_line()}
    save_preset(fit.config, args.out, description=f"fitted by rramk.fit to {args.traces.name}", provenance=source,
                fit=fit.record())
    print(f"wrote {args.out}")
    if args.report:
        files = write_report(args.report, fit, name=args.out.stem, title=args.out.stem)
        print(f"wrote {len(files)} files to {args.report}")
    return 0


def demo(args) -> int:
    from .device.preset import save_preset
    from .device.preset_fit import fit_preset

    out = args.demo
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for case in DEMO_CASES:
        print(f"{case.name}: simulating {args.devices} devices", flush=True)
        traces, _ = case.simulate(args.devices)
        fit = fit_preset(traces, progress=lambda text: print(f"  {text}", flush=True))
        print(fit.summary())
        save_preset(fit.config, out / f"{case.name}.json", description=f"fitted to simulated devices: {case.name}",
                    provenance={"source": f"simulated: rramk.fit DEMO_CASES[{case.name!r}]", "sha256": None,
                                "fit_date": provenance.today(), "command": provenance.command_line(),
                                "machine": provenance.machine_line()}, fit=fit.record())
        write_report(out, fit, name=case.name, title=case.name, true=case.config)
        stats = statistics(traces, fit.config, band_counts(traces, points=8))
        results.append((case, fit, recovery(case.config, fit), noise_recovery(case.config, fit), stats))
    path = write_recovery(out, results)
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.demo is not None:
        if args.devices < 20:
            print("rramk.fit: --devices: at least 20 devices are needed for a distribution", file=sys.stderr)
            return 2
        return demo(args)
    if args.traces is None or args.out is None:
        print("rramk.fit: give TRACES and --out PRESET.json (or --demo DIR)", file=sys.stderr)
        return 2
    return fit_file(args)


if __name__ == "__main__":
    sys.exit(main())
