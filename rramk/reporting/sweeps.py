"""The sweeps' reports: accuracy against the pulse learning rate (``reports/ablation_<dataset>_<budget>_lr.md``)
and against one knob of the device (``..._sensitivity-<knob>.md``), with their figures.

Input: the same summaries as ``rramk.reporting.ablation`` (whose helpers these reports share). Per budget:

* the learning-rate study (when runs at other rates exist): accuracy against lr_pulses and the rate
  rramk uses by default, measured;
* each sensitivity sweep (when runs of a scaled knob exist): accuracy against the knob, and the
  largest value within 0.5 and 1 point of the mean model.

Each file says the machine, the dates of the runs, the seeds and the commands that made it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from tabulate import tabulate

from rramk.studies.configs import NOISE, Study, knobs_of, lr_study, sensitivity_study
from rramk.reporting.ablation import TOLERANCES
from rramk.reporting.runs import (all_runs, budget_words, code_versions, dates,
                                  machine_names, machines, pct, seeds_of)
from rramk.studies.summaries import UNSUFFIXED_LR, ablation_command, default_lr, study_runs
from rramk.studies.statistics import ablation_rows, best_lr, lr_rows, reported_accuracy, selection_rule
from rramk.studies.tolerance import sensitivity, tolerance, tolerance_interval
from rramk.studies.welch import LEVEL
from rramk.device.families import device_from_dict
from rramk.reporting.files import PNG_METADATA, REPORT_COMMAND, pyplot


def lrs_found(directories: dict, study: Study, default: float) -> list[float]:
    """The pulse learning rates with runs of any of ``study``'s configurations (the default included)."""
    found = set()
    for config in study.configs.values():
        if config.slug in directories:
            found.add(default)
        for name in directories:
            match = re.fullmatch(re.escape(config.slug) + r"-lr([0-9.e+-]+)", name)
            if match:
                found.add(float(match.group(1)))
    return sorted(found)




def write_lr(dataset: str, budget: str, directories: dict, out_dir: Path) -> tuple[list[Path], dict]:
    """ablation_<dataset>_<budget>_lr.md and .png, if runs at a learning rate other than the default exist."""
    default = default_lr(dataset)  # rramk.train's rate, marked in the table; directories: UNSUFFIXED_LR
    study = lr_study(())
    lrs = lrs_found(directories, study, UNSUFFIXED_LR)
    if len(lrs) <= 1:
        return [], {}
    by_lr = {lr: study_runs(directories, study, lr, UNSUFFIXED_LR) for lr in lrs}
    table = lr_rows(by_lr, (study.mean, study.full))
    runs = [s for r in by_lr.values() for s in all_runs(r)]
    first = runs[0]
    seeds, seeds_line = seeds_of({(lr, k): v for lr, r in by_lr.items() for k, v in r.items()})
    command = ablation_command(dataset, first, "--study lr --lr-pulses " + " ".join(f"{lr:g}" for lr in lrs), seeds)
    name = f"ablation_{dataset}_{budget}_lr"
    lines = [f"# Pulse learning rate: {dataset}, {budget}\n",
             f"- Machine: {machines(runs)}",
             f"- Dates of the runs: {dates(runs)}",
             f"- Runs: `{command}` ({first['epochs']} epochs, "
             f"{first['settings'].get('limit_train') or 'all'} training examples)",
             f"- Seeds: {seeds_line}",
             f"- This file: `{REPORT_COMMAND}`\n",
             f"Reported test accuracy ({selection_rule(runs)}; mean ± standard error over seeds) of the mean "
             "model and the "
             "full model at each pulse learning rate (lr_pulses: pulses per unit of Adam step, halved every 7 "
             "epochs; the published runs used 8 to 100, MODEL.md section 3); cost = mean model - full model.\n"]
    cells = []
    for r in table:
        mean, full = r["rows"].get(study.mean), r["rows"].get(study.full)
        cells.append([f"{r['lr']:g}" + (" (default)" if r["lr"] == default else ""),
                      "" if mean is None else pct(mean["mean"], mean["se"]),
                      "" if full is None else pct(full["mean"], full["se"]), pct(r["cost"], r["cost_se"], True),
                      " / ".join(str(x["seeds"]) if x else "0" for x in (mean, full)),
                      "" if full is None or math.isnan(full["past_t_star"]) else f"{100 * full['past_t_star']:.1f}"])
    lines.append(tabulate(cells, headers=["lr_pulses", f"{study.mean} (%)", f"{study.full} (%)",
                                          "cost (points)", "seeds (mean / full)", "full: past t* (%)"],
                          tablefmt="github", disable_numparse=True))
    said = best_lr(table, study.full, default) + best_lr(table, study.mean, default)
    lines += ["\n## Which default rramk uses, and why\n",
              f"rramk.train trains at lr_pulses {default:g} unless told otherwise (`--lr-pulses`). The published "
              "sources name two rates, not one: the authors' code uses 8 (in the name of an MNIST output file) and "
              "100 (its README), MODEL.md section 3; rramk's earlier default, 20, was never published. The "
              "default is the full model's best rate on validation at the published budget (README, 'The pulse "
              "learning rate'). Measured here:\n", *said]
    png = out_dir / f"{name}.png"
    plot_lr(table, (study.mean, study.full), default, png, f"{dataset}, {budget}")
    lines.append(f"\nAccuracy against lr_pulses: [{png.name}]({png.name}).")
    md = out_dir / f"{name}.md"
    md.write_text("\n".join(lines) + "\n")
    return [md, png], {"lr": said}


def plot_lr(table: list[dict], labels: tuple[str, str], default: float, path: Path, title: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=150)
    for label, color in zip(labels, ("0.35", "tab:red")):
        pts = [(r["lr"], r["rows"][label]) for r in table if label in r["rows"]]
        if not pts:  # a configuration of a study in progress with no finished run yet
            continue
        ax.errorbar([p[0] for p in pts], [100 * p[1]["mean"] for p in pts],
                    yerr=[0 if math.isnan(p[1]["se"]) else 100 * p[1]["se"] for p in pts], color=color, marker="o",
                    capsize=3, label=f"{label} (n={max(p[1]['seeds'] for p in pts)})")
    ax.axvline(default, color="k", lw=0.8, ls=":", label=f"rramk default ({default:g})")
    ax.set_xscale("log")
    ax.set_xticks([r["lr"] for r in table], [f"{r['lr']:g}" for r in table])
    ax.minorticks_off()
    ax.set_xlabel("pulse learning rate lr_pulses")
    ax.set_ylabel("test accuracy (%)\nerror bar: standard error over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Pulse learning rate ({title})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, metadata=PNG_METADATA)
    plt.close(fig)


# ----------------------------------------------------------------------------- sensitivity sweeps


def family_of(directories: dict) -> str:
    """The device family of a budget's runs (their device_config's ``device_family``; HfOxWeakReset if none)."""
    for runs in directories.values():
        for summary in runs:
            if summary.get("device_config"):
                return summary["device_config"].get("device_family", "HfOxWeakReset")
    return "HfOxWeakReset"


def sweeps_found(directories: dict) -> list[tuple[str, str, float | None, list[float]]]:
    """(knob, base, lr, factors) of every sweep with a run of a scaled configuration in ``directories``;
    lr: the pulse learning rate of its ``-lr<rate>`` directories (None: the unsuffixed UNSUFFIXED_LR)."""
    found = []
    for knob, spec in knobs_of(family_of(directories)).items():
        for base in ("mean", "full"):
            if base == "mean" and spec.imperfection in NOISE:  # mean-plus-d2d-x0.5, mean-plus-d2d_m1-x0.5-lr8
                stem = f"mean-plus-{knob}-x"
            else:
                stem = f"{base}-{knob}-x"
            by_lr: dict[float | None, list[float]] = {}
            for name in directories:
                match = re.fullmatch(re.escape(stem) + r"([0-9.e+]+)(?:-lr([0-9.e+]+))?", name)
                if match:
                    lr = float(match.group(2)) if match.group(2) else None
                    by_lr.setdefault(lr, []).append(float(match.group(1)))
            found += [(knob, base, lr, sorted(factors)) for lr, factors in
                      sorted(by_lr.items(), key=lambda item: -1 if item[0] is None else item[0])]
    return found


def write_sensitivity(dataset: str, budget: str, directories: dict, knob: str, base: str, factors: list[float],
                      out_dir: Path, lr: float | None = None) -> tuple[list[Path], dict]:
    """ablation_<dataset>_<budget>_sensitivity-<knob>[-full][-lr<rate>].md and .png: accuracy against the
    knob, of the runs at pulse rate ``lr`` (None: the unsuffixed directories)."""
    from rramk.device.model_tables import knob_measures

    family = family_of(directories)
    spec = knobs_of(family)[knob]
    extra = [0.0] if spec.zero_is_off or base == "mean" else []
    study = sensitivity_study(knob, tuple(sorted(set(factors) | {1.0, *extra})), base, family)
    runs = study_runs(directories, study, lr, UNSUFFIXED_LR)
    rows = ablation_rows(runs, study.labels)
    any_run = next(iter(all_runs(runs)), {})  # the device of --preset, which its summary records (None: the fit)
    preset = device_from_dict(any_run["preset"]["device"]) if any_run.get("preset") else None
    measures = {label: knob_measures(config.device(preset)) for label, config in study.configs.items()}
    points = sensitivity(rows, study, {label: m[spec.measure] for label, m in measures.items()})
    if not points:
        return [], {}
    every_run = all_runs(runs)
    first = every_run[0]
    seeds, seeds_line = seeds_of(runs)
    swept = ",".join(f"{v:g}" for v in sorted(study.values.values()))
    flags = f"--study sensitivity --knob {knob} --values {swept}" + ("" if base == spec.base else f" --base {base}") \
        + ("" if lr is None else f" --lr-pulses {lr:g}")
    name = f"ablation_{dataset}_{budget}_sensitivity-{knob}" + ("" if base == spec.base else f"-{base}") \
        + ("" if lr is None else f"-lr{lr:g}")
    on = f"the mean model plus {spec.imperfection}" if base == "mean" and spec.imperfection in NOISE else \
        ("the mean model" if base == "mean" else "the full model")
    lines = [f"# Sensitivity to {knob}: {dataset}, {budget}\n",
             f"- Machine: {machines(every_run)}",
             f"- Dates of the runs: {dates(every_run)}",
             f"- Code: {code_versions(every_run)}",
             f"- Runs: `{ablation_command(dataset, first, flags, seeds)}` ({budget_words(first)})",
             f"- Seeds: {seeds_line}",
             f"- This file: `{REPORT_COMMAND}`\n",
             f"The knob `{knob}` of `{family}.scaled` (a factor on the "
             f"{'published ' if family == 'HfOxWeakReset' else ''}fit, 1 = the fit), swept on "
             f"{on}; in the unit a device engineer measures: {spec.unit} (`rramk.device.model_tables.knob_measures`, "
             "over the devices the configuration draws). Loss = mean model - this configuration, in accuracy "
             "points (means over seeds, ± standard error).\n"]
    lines.append(_sweep_table(points, measures, knob, spec.unit))
    mean_runs = runs.get(study.mean, [])
    tolerance_lines, answers, better = _tolerance_section(points, [reported_accuracy(s) for s in mean_runs], spec)
    lines += tolerance_lines
    lines.append("\nHow: going up the sweep from its smallest factor, the first swept value whose loss exceeds the "
                 "tolerance ends the range; the answer is interpolated linearly between that value and the one "
                 "before it, in the factor and, separately, in the measured unit. The published fit is factor 1. "
                 f"The interval: the central {100 * LEVEL:.0f} % of the tolerances read from 2000 bootstrap "
                 "resamples of the seeds of every cell (`rramk.studies.tolerance.tolerance_interval`); an end the "
                 "sweep does not bound (the tolerance below the smallest or beyond the largest factor swept in more "
                 "than the tail's share of resamples) is said to be open.")
    png = out_dir / f"{name}.png"
    plot_sensitivity(points, runs, study, png, f"{dataset}, {budget}", knob, spec.unit)
    lines.append(f"\nAccuracy against the knob: [{png.name}]({png.name}).")
    md = out_dir / f"{name}.md"
    md.write_text("\n".join(lines) + "\n")
    return [md, png], {"knob": knob, "base": base, "budget": budget, "seeds": seeds, "points": points,
                       "tolerances": answers, "unit": spec.unit, "file": md.name, "runs": len(every_run),
                       "better": len(better),
                       "command": ablation_command(dataset, first, flags, seeds),
                       "when": f"{machine_names(every_run)}, {dates(every_run)}"}


def _sweep_table(points: list[dict], measures: dict[str, dict], knob: str, unit: str) -> str:
    """One row per factor: the measured value, the configuration, its accuracy and loss (and, for d2d, the
    spreads of m1 and t* it implies)."""
    header = ["factor", unit, "configuration", "seeds", "test accuracy (%)", "loss vs mean model (points)",
              "past t* (%)"]
    extra_cols = [("sigma_m1", "sigma of m1 (1/pulse)"), ("median_t_star", "median t* (pulses)")] \
        if knob == "d2d" else []
    cells = []
    for p in points:
        m = measures[p["config"]]
        cells.append([f"{p['factor']:g}", f"{p['measure']:.4g}", p["config"], p["seeds"], pct(p["mean"], p["se"]),
                      pct(p["loss"], p["loss_se"], True),
                      "" if math.isnan(p["past_t_star"]) else f"{100 * p['past_t_star']:.1f}",
                      *(f"{m[k]:.4g}" for k, _ in extra_cols)])
    return tabulate(cells, headers=header + [h for _, h in extra_cols], tablefmt="github", disable_numparse=True)


def _tolerance_section(points: list[dict], mean_values: list[float], spec) -> tuple[list[str], dict, list[dict]]:
    """'How much is tolerable?': at each tolerance, the largest factor (and measured value) within it with
    its bootstrap interval; and the factors that train better than the mean model."""
    lines, answers = ["\n## How much is tolerable?\n"], {}
    for tol in TOLERANCES:
        at, in_unit = tolerance(points, tol), tolerance(points, tol, key="measure")
        interval = tolerance_interval(points, mean_values, tol)
        if at["kind"] == "none":
            text = (f"even the smallest factor swept ({points[0]['factor']:g}) loses more than {100 * tol:.1f} "
                    "point")
        elif at["kind"] == "beyond":
            text = (f"every factor swept keeps the loss within {100 * tol:.1f} point: the tolerance lies beyond "
                    f"{at['value']:g} ({spec.unit} {in_unit['value']:.4g})")
        else:
            text = (f"up to factor **{at['value']:.2f}** ({spec.unit} ≈ {in_unit['value']:.3g}) the loss stays "
                    f"within {100 * tol:.1f} point of the mean model ({interval_words(interval)})")
        lines.append(f"- within {100 * tol:.1f} point: {text}.")
        answers[tol] = {"tolerance": at, "measure": in_unit, "interval": interval, "text": text}
    better = [p for p in points if p["loss"] < 0 and not math.isnan(p["loss_se"]) and p["loss"] < -2 * p["loss_se"]]
    if better:
        lines.append(f"- at this budget, {len(better)} of the {len(points)} factors swept train *better* than the mean "
                     "model beyond 2 standard errors (negative loss): identical devices all read W = +1 at the start "
                     "(a tie, MODEL.md section 2), so the mean model starts from a worse network, and a knob's cost "
                     "shows only once devices pass t* (the past t* column). The tolerance is read against that "
                     "baseline, which a small spread beats.")
    return lines, answers, better


def interval_words(interval: dict) -> str:
    """'95 % interval 0.52 to 0.97', with 'not bounded' for an open end, or why there is none."""
    if math.isnan(interval["low"]):
        return "one seed in a cell: no interval"
    low = "not bounded below the sweep" if interval["open_low"] else f"{interval['low']:.2f}"
    high = "not bounded within the sweep" if interval["open_high"] else f"{interval['high']:.2f}"
    return f"{100 * LEVEL:.0f} % interval {low} to {high}"


def _spaced_ticks(x: list[float], labels: list[str], gap: float = 0.07) -> tuple[list[float], list[str]]:
    """The ticks at least ``gap`` of the axis' span apart, from the left (dense sweep points overprint)."""
    span = (max(x) - min(x)) or 1.0
    kept: list[tuple[float, str]] = []
    for value, label in sorted(zip(x, labels)):
        if not kept or value - kept[-1][0] >= gap * span:
            kept.append((value, label))
    return [v for v, _ in kept], [label for _, label in kept]


def _seed_range(points: list[dict]) -> str:
    """'n = 5' or 'n = 1-5': the seeds behind the points (a partial sweep has fewer at some factors)."""
    low, high = min(p["seeds"] for p in points), max(p["seeds"] for p in points)
    return f"n = {high}" if low == high else f"n = {low}-{high}"


def plot_sensitivity(points: list[dict], runs: dict, study: Study, path: Path, title: str, knob: str,
                     unit: str) -> None:
    """Accuracy (mean ± standard error) against the knob's factor, the measured unit on the top axis,
    the mean model and the 0.5 and 1 point tolerances as horizontal lines."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.4), dpi=150)
    x = [p["factor"] for p in points]
    ax.errorbar(x, [100 * p["mean"] for p in points], yerr=[0 if math.isnan(p["se"]) else 100 * p["se"]
                                                            for p in points],
                color="tab:red", marker="o", capsize=3, label=f"{knob} swept ({_seed_range(points)} per point)")
    mean_runs = runs.get(study.mean)
    if mean_runs:
        mean = sum(reported_accuracy(s) for s in mean_runs) / len(mean_runs)
        ax.axhline(100 * mean, color="0.35", lw=1.0, label="mean model")
        for tol, style in zip(TOLERANCES, ("--", ":")):
            ax.axhline(100 * (mean - tol), color="0.35", lw=0.8, ls=style, label=f"mean model - {100 * tol:.1f} point")
    ax.axvline(1.0, color="k", lw=0.6, ls=":")
    ax.set_xlabel(f"{knob} factor (1 = the published fit)")
    ax.set_ylabel("test accuracy (%)\nerror bar: standard error over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    top = ax.twiny()
    top.set_xlim(ax.get_xlim())
    top.set_xticks(*_spaced_ticks(x, [f"{p['measure']:.3g}" for p in points]), fontsize=7)
    top.set_xlabel(unit, fontsize=8)
    fig.suptitle(f"Sensitivity to {knob} ({title})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, metadata=PNG_METADATA)
    plt.close(fig)


# ----------------------------------------------------------------------------- every study


