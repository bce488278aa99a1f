"""The goodness-of-fit report of ``python -m rramk.fit``, and the recovery table of its ``--demo``.

``write_report``: ``<name>_report.md`` (the preset's summary, ln R of the traces against devices
simulated from the fitted preset with bounds, the residual spectrum's slope) and four figures:
ln R median and 10-90% band against the preset's, per-device fits against the chosen
distributions, the residual power spectrum against the fitted 1/f term, RTN dwell-time histograms.
``write_recovery``: ``recovery.md``, every demo case's parameters and noise against the truth, each
quantile's error against its derived bound and the bound's parts (``rramk.fitting.recovery``). Each file
says the machine, the date and the command.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rramk import provenance
from rramk.device.config import HfOxWeakReset
from rramk.fitting.adequacy import Adequacy, band_counts, check_family, fails

UNITS = {"m1": "1/pulse", "t_star": "pulses", "m2": "1/pulse", "c1": "ln R", "a_rtn": "ln R"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt



def plot_band(path: Path, traces, config, title: str) -> None:
    from rramk.device.traces import reads_at, simulate_reads

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
    from rramk.fitting.pink_noise import pink_coefficients

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
    model = model + fit.read_noise ** 2  # white read noise (PresetFit.read_noise): flat, its variance per read
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
    fitted = (f"fitted white read noise (sd {fit.read_noise:.3g}; no 1/f term)" if fit.read_noise else
              f"fitted 1/f term (alpha {fit.config.pink_alpha:.3g}, d {fit.config.pink_d:.2f})")
    ax.loglog(freqs[1:], model[1:], color="tab:orange", lw=1.8, label=f"{fitted}, slope {model_slope:.2f}")
    ax.set_xlabel(f"frequency (1/pulse; reads every {spacing} pulse{'s' if spacing > 1 else ''})")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())  # the minor labels of a short decade overlap
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
                 true: HfOxWeakReset | None = None, adequacy: Adequacy | None = None, families=None) -> list[Path]:
    """The goodness-of-fit report of one fit: ``{name}_report.md`` and four figures in ``out`` (``adequacy``:
    the fit's checks against its traces, computed here when not given; ``families``: the
    ``family_choice.FamilyChoice`` among the families, shown first)."""
    from tabulate import tabulate

    out.mkdir(parents=True, exist_ok=True)
    files = [out / f"{name}_{kind}.png" for kind in ("lnr_band", "parameters", "spectrum", "rtn_dwells")]
    plot_band(files[0], fit.traces, fit.config, f"{title}: ln R, traces against the fitted preset")
    plot_parameters(files[1], fit, f"{title}: per-device fits and the chosen distributions", true)
    slope, model_slope = plot_spectrum(files[2], fit, f"{title}: residual power spectrum")
    plot_dwells(files[3], fit, f"{title}: RTN dwell times")
    if adequacy is None:
        adequacy = check_family(fit.traces, fit.config)
    rows = adequacy.rows
    lines = [provenance.header(f"Fit of a weak-RESET preset: {title}", command), ""]
    lines.append(f"Traces: {fit.traces.source or 'simulated'}"
                 + (f" (SHA-256 {fit.traces.sha256})" if fit.traces.sha256 else "") + "\n")
    if families is not None:
        lines.append("## Device family\n\nEach family fitted in its own read quantity, the log-likelihood of the same "
                     "resistances (rramk.fitting.family_choice), and each fit's quantile checks against its traces:\n")
        lines.append(families.table() + "\n")
        lines.append(f"**{families.sentence()}.** The rest of this report is the HfOx fit's.\n")
    lines.append("## Preset\n\n```\n" + fit.summary() + "\n```\n")
    lines.append("## ln R of the traces against 4000 devices simulated from the fitted preset\n")
    lines.append("Per pulse count and level q: the traces' quantile, the simulation's, and F_sim(traces' quantile) "
                 "- q against 4 sqrt(q(1-q)(1/n + 1/N)); a check fails beyond that bound and beyond 0.05 "
                 "(rramk.fitting.adequacy).\n")
    lines.append(f"**Verdict:** {adequacy.sentence()}.\n")
    lines.append(tabulate([[r["pulses"], r["devices"], r["level"], f"{r['data']:.4f}", f"{r['simulated']:.4f}",
                            f"{r['error']:+.3f}", f"{r['bound']:.3f}", "NO" if fails(r) else "yes"]
                           for r in rows], headers=["pulses", "devices", "q", "traces", "simulated", "error",
                                                    "bound", "within"], tablefmt="github"))
    fitted = "the fitted white read noise" if fit.read_noise else "the fitted 1/f term"
    if math.isnan(slope):
        lines.append(f"\nResidual spectrum: not measured (it needs runs of reads at one spacing, which these traces "
                     f"do not have; {fitted} is in the figure).\n")
    else:
        lines.append(f"\nResidual spectrum: log-log slope {slope:.2f} measured, {model_slope:.2f} for {fitted} "
                     "(same band).\n")
    lines.append("Figures: " + ", ".join(f"`{f.name}`" for f in files) + "\n")
    report = out / f"{name}_report.md"
    report.write_text("\n".join(lines))
    return [report, *files]


RECOVERY_METHOD = (
    "Each case: devices simulated with rramk (DeviceArray, one update per read, reference backend), fitted by "
    "`rramk.fit_preset`. For each parameter, the fitted distribution's quantile x_q at level q, read through the "
    "true distribution: error = F_true(x_q) - q. c1 is compared as ln R0 + c1 (what a trace shows); A_rtn above "
    "the fitted lower end (smaller amplitudes hide in the 1/f noise).\n\n"
    "**The bound is derived, not chosen** (`rramk.fitting.recovery`). Each device that informs the parameter sees "
    "it with its own error s_i: the sd of its profile likelihood (for a Gaussian profile its sd: the least-squares "
    "standard error, widened by the knee's uncertainty). The devices' "
    "estimates are draws from the truth blurred by those errors, G(x) = mean_i ∫ Φ((x - θ)/s_i) dF_true(θ); "
    "their quantile x* = G⁻¹(q) is off by the *blur* F_true(x*) - q, with a sampling sd (f_true/g)(x*) "
    "sqrt(V(q)/n) (delta method; never below sqrt(V(q)/n), that of n exact devices). V(q) = q(1 - q), or for t* "
    "Kaplan-Meier's (1 - q)² ∫₀^q dp / ((1 - p)² C(Q_true(p))) with C(u) the share of devices whose trace can "
    "show a knee at u (its censor point beyond u): censored knees inform less. Bound = |blur| + z sd, z = {z:.2f}: "
    "a 1 % chance that a correct fit fails any of a case's {comparisons} comparisons (Bonferroni over {levels} "
    "levels x {parameters} parameters; conservative, as a parameter's levels are correlated); with exact devices "
    "it is z sqrt(q(1 - q)/n). The fit integrates each device's likelihood (it deconvolves the blur), so within "
    "the bound it is as close as the devices' own estimates allow. Not modelled: gross per-device errors (the "
    "calibration column: "
    "z_i = (likelihood mean - true value)/s_i, its robust sd, 1 where s_i is the device's actual error, and the "
    "share beyond 4 s_i) and a family that cannot take the truth's shape. A_rtn: {a_rtn}. The old bound 4 "
    "sqrt(q(1-q)/n) (k = 4 chosen by hand) is shown as 'old' for comparison.\n")


def _within(rows, key: str = "bound") -> int:
    return sum(abs(r["error"]) <= r[key] for r in rows)


def _parameter_table(fit, rows) -> str:
    """Per parameter: families, devices, censored ones, the devices' typical error, its calibration, and whether
    every level is within the derived and the old bounds."""
    from tabulate import tabulate

    table = []
    for name in fit.parameters:
        r = [x for x in rows if x["parameter"] == name]
        cal = r[0].get("calibration")
        table.append([name, r[0]["true_family"], r[0]["family"], r[0]["devices"], r[0]["censored"],
                      f"{r[0]['device_error']:.3f}", f"{cal['robust_sd']:.2f}, {100 * cal['gross']:.1f} %" if cal
                      else "", ("yes" if _within(r) == len(r) else "NO") + ("" if r[0]["derived"] else " (old)"),
                      "yes" if _within(r, "reference") == len(r) else "NO"])
    return tabulate(table, headers=["parameter", "true family", "chosen", "devices", "censored",
                                    "device error (median s_i / sd)", "calibration (robust sd of z, > 4 s_i)",
                                    "within derived", "within old"], tablefmt="github")


def _signed(value: float) -> str:
    return f"{value:+.4f}" if abs(value) >= 5e-5 else "0"


def _bound_table(rows) -> str:
    """Per parameter and level: the error, the derived bound and its parts, and the old bound."""
    from tabulate import tabulate

    table = []
    for r in rows:
        derived = r["derived"]
        table.append([r["parameter"], r["level"], f"{r['error']:+.3f}",
                      f"{r['bound']:.3f}" if derived else "not derived",
                      f"{r['sampling']:.3f}" if derived else "", _signed(r["blur"]) if derived else "",
                      f"{r['n_eff']:.0f}" if derived and math.isfinite(r["n_eff"]) else "",
                      ("yes" if abs(r["error"]) <= r["bound"] else "NO") + ("" if derived else " (old)"),
                      f"{r['reference']:.3f}"])
    return tabulate(table, headers=["parameter", "q", "error", "bound", "z sd (sampling)", "blur", "n_eff",
                                    "within", "old 4 sqrt(q(1-q)/n)"], tablefmt="github")


def _headline(results: list, replicates: dict) -> list[str]:
    """One line per case: the comparisons within the derived bounds and within the old ones, in the case's own
    population and over all its populations."""
    lines = ["| case | within derived bounds | within old 4 sqrt(q(1-q)/n) | all populations: within derived | "
             "all populations: within old |", "|---|---|---|---|---|"]
    for case, _, rows, _, _ in results:
        derived = [r for r in rows if r["derived"]]
        every = [x for rs in [rows, *(rs for rs, _ in (replicates or {}).get(case.name, []))] for x in rs]
        every_derived = [x for x in every if x["derived"]]
        lines.append(f"| {case.name} | {_within(derived)} of {len(derived)} (+ A_rtn {_within(rows) - _within(derived)}"
                     f" of {len(rows) - len(derived)} within the old) | {_within(rows, 'reference')} of {len(rows)} | "
                     f"{_within(every_derived)} of {len(every_derived)} (+ A_rtn "
                     f"{_within(every) - _within(every_derived)} of {len(every) - len(every_derived)} within the old) "
                     f"| {_within(every, 'reference')} of {len(every)} |")
    return lines + [""]


def write_recovery(out: Path, results: list, command: str | None = None, replicates: dict | None = None) -> Path:
    """``recovery.md``: every demo case's parameters and noise, fitted against the truth, each quantile's error
    against its derived bound (``recovery.recovery``); with ``replicates`` ({case name: [(rows, noise rows) of
    each further population]}), the errors across the populations against the derived RMS."""
    from tabulate import tabulate

    from .recovery import NOT_DERIVED

    rows = results[0][2]
    parameters = len({r["parameter"] for r in rows})
    lines = [provenance.header("Recovery of known presets by rramk.fit", command), ""]
    lines.append(RECOVERY_METHOD.format(z=rows[0]["z"], comparisons=len(rows), levels=len(rows) // parameters,
                                        parameters=parameters,
                                        a_rtn=NOT_DERIVED["a_rtn"].replace("4 sqrt(q(1-q)/n)", "the old bound")))
    lines.extend(_headline(results, replicates))
    for case, fit, rows, noise, stats in results:
        lines.append(f"## {case.name}: {case.description}\n")
        lines.append(f"{len(fit.devices)} devices, {fit.traces.reads} reads, lengths {case.lengths[0]}-"
                     f"{case.lengths[1]} pulses.\n")
        lines.append(_parameter_table(fit, rows) + "\n")
        lines.append(_bound_table(rows) + "\n")
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
        lines.extend(_tail_table(case, fit))
        more = (replicates or {}).get(case.name)
        if more:
            lines.extend(_replicate_tables([(rows, noise), *more]))
    path = out / "recovery.md"
    path.write_text("\n".join(lines))
    return path


def _replicate_tables(populations: list) -> list[str]:
    """The errors of one case across its populations (``recovery.across_replicates``), as markdown: mean ± sd,
    inflation; then the RMS against the derived sampling sd, level by level."""
    from tabulate import tabulate

    from .recovery import across_replicates

    count = len(populations)
    quantiles = across_replicates([rows for rows, _ in populations])
    noise = across_replicates([rows for _, rows in populations])
    lines = [f"Across {count} populations of this case (its own and {count - 1} more, other seeds): each error's mean "
             f"± sd over the populations; 'bias' where the mean differs from 0 beyond t(0.975, {count - 1}) sd / "
             f"sqrt({count}); 'inflation' = RMS error / sqrt(q(1-q)/n), the error against n exactly known devices' "
             f"sampling alone.\n"]
    names = list(dict.fromkeys(r["parameter"] for r in quantiles))
    levels = [x["level"] for x in quantiles if x["parameter"] == names[0]]
    table = []
    for name in names:
        r = [x for x in quantiles if x["parameter"] == name]
        table.append([name, *(f"{x['mean']:+.3f} ± {x['sd']:.3f}" + (" bias" if x["bias_resolved"] else "") for x in r),
                      f"{max(x['inflation'] for x in r):.2f}"])
    lines.append(tabulate(table, headers=["parameter", *(f"q={q}" for q in levels), "inflation (max over q)"],
                          tablefmt="github"))
    lines.append(f"\nThe same RMS errors against the derived sampling sd, sqrt(mean(sd²)) over the populations "
                 f"('RMS / sd': near 1 where sampling, widened by the devices' errors, accounts for the error; above 1 "
                 f"where something else adds to it: a family's shape, gross device errors; the blur is left out, as "
                 f"the fit deconvolves it, and is in the bound as an allowance), and the populations' levels beyond "
                 f"their derived bound (of {count} x {len(levels)}):\n")
    table = []
    for name in names:
        r = [x for x in quantiles if x["parameter"] == name]
        derived = all("explained" in x for x in r)
        table.append([name, *(f"{x['explained']:.2f}" if derived else "not derived" for x in r),
                      f"{sum(x['beyond'] for x in r)}" + ("" if derived else " (old bound)")])
    lines.append(tabulate(table, headers=["parameter", *(f"q={q}" for q in levels), "beyond the bound"],
                          tablefmt="github"))
    lines.append("")
    lines.append(tabulate([[x["parameter"], f"{x['mean']:+.3f}", f"{x['sd']:.3f}", "yes" if x["bias_resolved"] else "no"]
                           for x in noise], headers=["noise", "mean error", "sd", "bias resolved"], tablefmt="github"))
    lines.append("")
    return lines


def _tail_table(case, fit) -> list[str]:
    """The upper tails (``recovery.tails``) of one case's fit, and where they are not recovered."""
    from tabulate import tabulate

    from .recovery import TAIL_LEVELS, tails

    rows = tails(case.config, fit)
    table = [[r["parameter"], *(f"{r[f'true_{q}']:.4g} / {r[f'fitted_{q}']:.4g}" for q in TAIL_LEVELS),
              f"{r['true_high']:.4g} / {r['fitted_high']:.4g}", f"{100 * r['reached']:.1f} %",
              f"{100 * r['visible']:.1f} %"] for r in rows]
    short = [f"{r['parameter']} (to {100 * r['reached']:.1f} %)" for r in rows if r["reached"] < r["visible"]]
    lines = ["Upper tails (true / fitted; c1 as ln R0 + c1): 'reached' is the share of the true population below "
             "the fitted range's upper end; 'visible' what the n devices that inform the parameter can show, "
             "1 - 2/(n + 1) (the largest of n draws sits near 1 - 1/(n + 1)).\n",
             tabulate(table, headers=["parameter", *(f"q={q}" for q in TAIL_LEVELS), "upper end", "reached",
                                      "visible"], tablefmt="github"), ""]
    lines.append(("Upper tail not recovered: " + ", ".join(short) + ", short of what the devices show (t*: a "
                  "censored knee bounds it by the end of its trace)." if short
                  else "Every fitted range reaches as far as its devices can show.") + "\n")
    return lines
