"""The published ablation's report, ``reports/ablation_<dataset>_<budget>.md`` and its figures.

The sweeps are ``rramk.reporting.sweeps``, what every report says of its runs
``rramk.reporting.runs``, loading them ``rramk.studies.summaries``; ``rramk.report`` writes them
all. Input: ``reports/ablation/summaries/<dataset>/<budget>/<run directory>/seed<k>/summary.json``,
the finished runs of ``python -m rramk.ablation`` (any subset: a study in progress, or the finished
shards of a job array; run directories: ``rramk.ablation``). Per budget: the published study (when
its ideal BNN has runs): the table of its configurations over seeds, the cost of d2d, pink and rtn
with the verdict, saturation with and without (``rramk.studies.statistics``), a figure of the drops
and costs and, for two epochs or more, the training curves; the learning-rate study (when runs at
other rates exist): accuracy against lr_pulses; each sensitivity sweep (when runs of a scaled knob
exist): accuracy against the knob, and the largest value within 0.5 and 1 point of the mean model.
Each file says the machine, the dates of the runs, the seeds and the commands that made it.
"""

from __future__ import annotations

import math
from pathlib import Path

from tabulate import tabulate

from rramk.studies.configs import STUDIES, Study
from rramk.studies.statistics import (ADDED_VIEW, REMOVED_VIEW, ablation_rows, imperfection_costs, interaction,
                                      learning_curves, saturation_effects, saturation_sentences, selection_rule, verdict)
from rramk.studies.welch import LEVEL
from rramk.reporting.files import PNG_METADATA, REPORT_COMMAND, pyplot
from rramk.reporting.runs import all_runs, budget_words, code_versions, dates, machines, pct, seeds_of
from rramk.studies.summaries import ablation_command

DEFAULT_SEEDS = [0, 1, 2]
TOLERANCES = (0.005, 0.01)
"""Losses against the mean model a sensitivity report reads the tolerated knob at: 0.5 and 1 point."""


def _accuracy_table(rows: list[dict], study: Study, lrs: dict[str, float] | None = None) -> str:
    """One row per configuration; ``lrs``: the pulse learning rate each configuration's runs used (tuned)."""
    def lr_cell(r):
        return ("" if study.configs[r["config"]].imperfections is None else f"{lrs[r['config']]:g}") if lrs else None

    table = [[r["config"], study.configs[r["config"]].slug, r["imperfections"], lr_cell(r), r["seeds"],
              f"{100 * r['mean']:.2f}", "" if math.isnan(r["std"]) else f"{100 * r['std']:.2f}",
              f"{100 * r['min']:.2f} - {100 * r['max']:.2f}", f"{r['epoch']:.1f}", f"{100 * r['last']:.2f}",
              f"{100 * r['best']:.2f}", "" if math.isnan(r["drop"]) else f"{100 * r['drop']:+.2f}",
              "" if math.isnan(r["pulses"]) else f"{r['pulses']:.0f}",
              "" if math.isnan(r["past_t_star"]) else f"{100 * r['past_t_star']:.1f}"] for r in rows]
    headers = ["configuration", "runs in", "imperfections on", "lr_pulses", "seeds", "test accuracy (%)", "std (%)",
               "range (%)", "reported epoch (mean)", "last epoch (%)", "best epoch (%)", "drop vs ideal (points)",
               "pulses/device", "past t* (%)"]
    if not lrs:
        table, headers = [row[:3] + row[4:] for row in table], headers[:3] + headers[4:]
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


# ----------------------------------------------------------------------------- the published study


def _welch_cell(c: dict, view: str) -> str:
    """'+1.23 ± 0.45 (p = 0.003)', 'not resolved' where the interval holds 0, or the cost alone (one seed)."""
    value, half, p = c[view], c[f"{view}_ci"], c[f"{view}_p"]
    if math.isnan(value):
        return ""
    if math.isnan(half):
        return f"{100 * value:+.2f} (one seed)"
    return (f"{100 * value:+.2f} ± {100 * half:.2f} (p = {p:.2g})"
            + ("" if abs(value) > half else ", not resolved"))


def write_ablation(dataset: str, budget: str, runs: dict, out_dir: Path, study: Study = STUDIES["published"],
                   variant: str = "", note: str = "", lrs: dict[str, float] | None = None,
                   flags: str = "") -> tuple[list[Path], dict]:
    """ablation_<dataset>_<budget><variant>.md and .png (and _curves.png) of the published study; (paths,
    answers). ``variant``/``note``: a file-name suffix and a sentence for one learning-rate choice of a
    budget's runs (``_lr8``: every configuration at 8; ``_tuned``: each at the rate ``lrs`` names);
    ``flags``: what the runs' command adds (``--lr-pulses 8 100``)."""
    ranked_labels = [label for label in study.labels if label not in study.no_saturation.values()]
    rows = ablation_rows(runs, study.labels)
    if not rows:
        return [], {}
    main_rows = [r for r in rows if r["config"] in ranked_labels]
    name = f"ablation_{dataset}_{budget}{variant}"
    first = all_runs(runs)[0]
    seeds = seeds_of(runs)[0]
    lines = _header(dataset, budget, runs, flags, note) + [_accuracy_table(main_rows, study, lrs), ""]
    costs = imperfection_costs(rows, study)
    cost_lines, answers = _cost_section(rows, main_rows, costs, study)
    lines += cost_lines + _saturation_section(runs, rows, study)
    curves = learning_curves(runs, ranked_labels)
    written = []
    if max((len(c["epoch"]) for c in curves.values()), default=0) >= 2:
        curves_png = out_dir / f"{name}_curves.png"
        plot_learning_curves(curves, curves_png, f"{dataset}, {budget}", study)
        written.append(curves_png)
        shown = "validation" if all(c["accuracy"] == "validation_accuracy" for c in curves.values()) else "test"
        lines.append(f"\nTraining curves, {shown} accuracy and devices past t* per epoch (mean over seeds, band: "
                     f"min-max): [{curves_png.name}]({curves_png.name}).")
    lines.append("\nThe first study's framing (base `none`, the one-slope mean device; saturation ranked as a fourth "
                 "imperfection) is retired from reports/, because MODEL.md section 4 ranks only the three sources "
                 "of variation on the two-slope mean model. Every one of its runs is a row of this report (none = "
                 "mean model, no saturation; only saturation = mean model; only X = mean + X, no saturation; "
                 "all = full model; all but saturation = full model, no saturation; all but X = full but X): "
                 f"`{ablation_command(dataset, first, '--study legacy', seeds)}` reruns exactly its configurations.")
    lacking = _lacking(runs, study)
    absent = [c for c in study.labels if c not in runs
              and any(c.startswith((f"mean + {x}", f"full but {x}")) for x in lacking)]
    missing = [c for c in study.labels if c not in runs and c not in absent]
    if absent:
        lines.append(f"\nNot in this device (its preset has no {', '.join(lacking)}): {', '.join(absent)}.")
    if missing:
        lines.append(f"\nNot finished yet: {', '.join(missing)}.")
    md = out_dir / f"{name}.md"
    md.write_text("\n".join(lines) + "\n")
    png = out_dir / f"{name}.png"
    plot_ablation(main_rows, costs, png, f"{dataset}, {budget}")
    return [md, png] + written, answers


def _lacking(runs: dict, study: Study) -> list[str]:
    """The ranked imperfections the device of these runs lacks (its full model's are off: a preset's own)."""
    full = runs.get(study.full) or []
    config = (full[0].get("device_config") or {}) if full else {}
    return [x for x in study.ranked if config and config.get(x) is False]


# What the mean model keeps and what "without saturation" means, per device family (the prose of the report)
FAMILY_WORDS = {
    "HfOxWeakReset": {"mean": "the mean parameters and both slopes",
                      "saturation": "with its two slopes (as fitted) and without saturation (m2 = m1: one slope, the "
                                    "device never slows down)"},
    "SoftBounds": {"mean": "the mean parameters and its soft bound",
                   "saturation": "with its soft bound (as fitted) and without saturation (every step the first "
                                 "one's: the device never slows down)"},
    "Bidirectional": {"mean": "the mean parameters and its bounds",
                      "saturation": "with its bounds (as fitted) and without saturation (linear, unbounded steps)"},
}


def family_of_runs(runs: dict) -> str:
    """The device family of the study's device runs (HfOxWeakReset where their dicts name none)."""
    device_run = next((s for s in all_runs(runs) if s["settings"].get("imperfections") != "ideal"), all_runs(runs)[0])
    return (device_run.get("device_config") or {}).get("device_family", "HfOxWeakReset")


def _family_line(family: str) -> list[str]:
    """A line naming the device family of a preset of another family, and what saturation and t* mean there."""
    if family == "HfOxWeakReset":
        return []
    meaning = {"SoftBounds": "saturation = the soft bound (off: every step the first one's); past t* = past the time "
                             "constant 1/rate",
               "Bidirectional": "saturation = the bounds (off: linear, unbounded steps); past t* does not apply"}
    return [f"- Device family: {family} ({meaning.get(family, '')}; rramk.device.families)"]


def _words(runs: dict) -> dict:
    return FAMILY_WORDS.get(family_of_runs(runs), FAMILY_WORDS["HfOxWeakReset"])


def _header(dataset: str, budget: str, runs: dict, flags: str, note: str) -> list[str]:
    """The title, the provenance lines, the study's framing and the rules of the accuracy table."""
    first = all_runs(runs)[0]
    device_run = next((s for s in all_runs(runs) if s["settings"].get("imperfections") != "ideal"), first)
    seeds, seeds_line = seeds_of(runs)
    return [f"# Accuracy lost per device imperfection: {dataset}, {budget}\n",
            f"- Machine: {machines(all_runs(runs))}",
            f"- Dates of the runs: {dates(all_runs(runs))}",
            f"- Code: {code_versions(all_runs(runs))}",
            f"- Runs: `{ablation_command(dataset, first, flags, seeds=seeds)}` ({budget_words(first)})",
            f"- Seeds: {seeds_line}",
            f"- Reported accuracy: {selection_rule(all_runs(runs))}",
            f"- Pulse learning rate: {note or 'lr_pulses ' + format(device_run['settings']['lr_pulses'], 'g')}",
            *_family_line(family_of_runs(runs)),
            f"- This file: `{REPORT_COMMAND}`\n",
            "The published study's framing (MODEL.md section 4): the base is the **mean model**, every device "
            f"with {_words(runs)['mean']}; the three imperfections ranked are its sources of "
            "variation, **d2d**, **pink** and **rtn**, each added alone to the mean model (`mean + X`) and "
            "removed alone from the full model (`full but X`); `ideal` is the software BNN. Saturation is a "
            "property of the device, shown separately below and never ranked.\n",
            "Test accuracy: the reported one (above), mean over seeds; reported epoch: the mean of the epochs "
            "the runs report; last epoch: the test accuracy after the last epoch; best epoch: the mean of each "
            "run's best test accuracy (chosen on the test set: optimistic, for comparison only); drop = ideal "
            "mean - this mean; pulses/device and past t* (devices beyond their saturation onset) are read from "
            "the devices at the end of training; runs in = the run directory under "
            "reports/ablation/summaries/<dataset>/<budget>/ (shared with the legacy study).\n"]


def _cost_section(rows: list[dict], main_rows: list[dict], costs: list[dict], study: Study) -> tuple[list[str], dict]:
    """'Which imperfection costs the most?': the costs with Welch's test, the verdict, the interaction;
    and the answers the index leads with."""
    if all(math.isnan(c["added"]) and math.isnan(c["removed"]) for c in costs):
        return [], {}
    lines = ["## Which imperfection costs the most?\n",
             f"Cost of d2d, pink and rtn in accuracy points, ± the half-width of the {100 * LEVEL:.0f} % "
             f"interval of Welch's t-test over seeds, and its two-sided p: {ADDED_VIEW} "
             f"({study.mean} - {study.added.format('X')}), and {REMOVED_VIEW} "
             f"({study.removed.format('X')} - {study.full}); a cost whose interval holds 0 is not resolved.\n",
             tabulate([[c["imperfection"], *(_welch_cell(c, view) for view in ("added", "removed"))] for c in costs],
                      headers=["imperfection", ADDED_VIEW, REMOVED_VIEW], tablefmt="github", disable_numparse=True),
             ""]
    said = verdict(costs, rows=rows)
    lines += said + interaction(rows, costs, study.mean, study.full, "the mean model")
    return lines, {"costs": costs, "verdict": said, "seeds": sorted({r["seeds"] for r in main_rows})}


def _saturation_section(runs: dict, rows: list[dict], study: Study) -> list[str]:
    """Saturation, shown beside the ranking: each configuration with and without its second slope."""
    effects = saturation_effects(rows, study)
    if not effects:
        return []
    table = tabulate([[e["config"], f"{100 * e['with']['mean']:.2f}", f"{100 * e['without']['mean']:.2f}",
                       pct(e["cost"], e["se"], True), f"{e['with']['seeds']} / {e['without']['seeds']}",
                       "" if math.isnan(e["with"]["past_t_star"]) else f"{100 * e['with']['past_t_star']:.1f}"]
                      for e in effects],
                     headers=["configuration", "with saturation (%)", "without (%)", "saturation costs (points)",
                              "seeds (with / without)", "past t* (%)"], tablefmt="github", disable_numparse=True)
    return ["\n## Saturation: a property of the device, not ranked\n",
            f"Each configuration {_words(runs)['saturation']}; saturation costs = accuracy without - with (± "
            "standard error over seeds).\n",
            table, "", *saturation_sentences(runs, rows, study)]


def plot_ablation(rows: list[dict], costs: list[dict], path: Path, title: str) -> None:
    """Left: the drop of every configuration against the ideal BNN (error bar: std over seeds).
    Right: the cost of each ranked imperfection in both views of the study (error bar: Welch's interval)."""
    plt = pyplot()
    rows = [r for r in rows if r["config"] != "ideal" and not math.isnan(r["drop"])]
    fig, (ax, ax_cost) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=150, gridspec_kw={"width_ratios": [3, 2]})
    labels = [f"{r['config']} (n={r['seeds']})" for r in rows]
    drops = [100 * r["drop"] for r in rows]
    errors = [0 if math.isnan(r["std"]) else 100 * r["std"] for r in rows]
    colors = ["tab:red" if "d2d" in r["imperfections"].split(",") or r["imperfections"] == "all" else "tab:blue"
              for r in rows]
    ax.barh(labels, drops, xerr=errors, color=colors, alpha=0.8, capsize=3)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("drop against the ideal BNN (points)\nerror bar: std over seeds")
    ax.set_title("test accuracy lost per configuration (red: d2d on)", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    names = [c["imperfection"] for c in costs]
    y = list(range(len(names)))
    for offset, key, color, label in ((-0.2, "added", "tab:gray", ADDED_VIEW), (0.2, "removed", "tab:red",
                                                                                REMOVED_VIEW)):
        values = [0.0 if math.isnan(c[key]) else 100 * c[key] for c in costs]
        err = [0.0 if math.isnan(c[f"{key}_ci"]) else 100 * c[f"{key}_ci"] for c in costs]
        ax_cost.barh([i + offset for i in y], values, height=0.38, xerr=err, color=color, alpha=0.8, capsize=3,
                     label=label)
    ax_cost.set_yticks(y, names)
    ax_cost.invert_yaxis()
    ax_cost.axvline(0, color="k", lw=0.8)
    ax_cost.set_xlabel(f"accuracy cost (points)\nerror bar: {100 * LEVEL:.0f} % interval (Welch) over seeds")
    ax_cost.set_title("cost of each imperfection", fontsize=10)
    # below the axis label: inside, it hides the error bars of the last row
    ax_cost.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, frameon=False)
    ax_cost.grid(alpha=0.3, axis="x")
    fig.suptitle(f"Accuracy lost per device imperfection ({title})")
    fig.tight_layout()
    fig.savefig(path, metadata=PNG_METADATA)
    plt.close(fig)


CURVE_STYLE = {"ideal": ("k", "--"), "none": ("0.55", "-"), "all": ("tab:red", "-"), "d2d": ("tab:red", ":"),
               "pink": ("tab:purple", "-."), "rtn": ("tab:green", "-."), "saturation": ("tab:orange", "-.")}


def plot_learning_curves(curves: dict[str, dict], path: Path, title: str, study: Study = STUDIES["published"]) -> None:
    """Two columns (each ranked imperfection added alone to the mean model; the full model minus each
    one), two rows (test accuracy; fraction of devices past their saturation onset t*) against epochs."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4), dpi=150, sharex=True, sharey="row",
                             gridspec_kw={"height_ratios": [2, 1]})
    for col, (pattern, base, heading) in enumerate(((study.added, study.mean, "each imperfection alone"),
                                                    (study.removed, study.full, "the full model minus one"))):
        members = {pattern.format(x): x for x in study.ranked}
        for label in ["ideal", base, *members]:
            if label not in curves:
                continue
            c = curves[label]
            if label in members:
                color, style = CURVE_STYLE.get(members[label], ("tab:blue", "-"))
                style = "-." if col == 1 else style
            else:
                color, style = CURVE_STYLE["ideal"] if label == "ideal" else (CURVE_STYLE["none"] if col == 0
                                                                              else CURVE_STYLE["all"])
            name = f"{label} (n={c['seeds']})"
            width = 2.0 if label == base else 1.3
            axes[0, col].plot(c["epoch"], [100 * v for v in c["mean"]], color=color, ls=style, lw=width, label=name)
            if c["seeds"] > 1:
                axes[0, col].fill_between(c["epoch"], [100 * v for v in c["min"]], [100 * v for v in c["max"]],
                                          color=color, alpha=0.12, lw=0)
            if not all(math.isnan(v) for v in c["past_t_star"]):
                axes[1, col].plot(c["epoch"], [100 * v for v in c["past_t_star"]], color=color, ls=style, lw=width)
        axes[0, col].set_title(heading)
        axes[0, col].legend(fontsize=7, loc="lower right")
        axes[1, col].set_xlabel("epoch")
        axes[1, col].xaxis.set_major_locator(MaxNLocator(integer=True))
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
    shown = "validation" if all(c.get("accuracy") == "validation_accuracy" for c in curves.values()) else "test"
    axes[0, 0].set_ylabel(f"{shown} accuracy (%)")
    axes[1, 0].set_ylabel("devices past t* (%)")
    fig.suptitle(f"Training under each device imperfection ({title})")
    fig.tight_layout()
    fig.savefig(path, metadata=PNG_METADATA)
    plt.close(fig)


# ----------------------------------------------------------------------------- the learning-rate study
