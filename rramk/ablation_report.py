"""The ablation studies' reports: ``reports/ablation_<dataset>_<budget>[_lr|_sensitivity-<knob>].md`` and figures.

Input: ``reports/ablation/summaries/<dataset>/<budget>/<run directory>/seed<k>/summary.json``, the
finished runs of ``python -m rramk.ablation`` (any subset: a study in progress, or the shards of a
job array that have finished). A run directory is a configuration's slug (rramk.ablation_configs),
with ``-lr<rate>`` for a pulse learning rate other than the default; studies that name the same run
share it. Per budget:

* the published study (when its ideal BNN has runs): the table of its configurations over seeds, the
  cost of d2d, pink and rtn with the verdict, saturation with and without (rramk.ablation_statistics),
  a figure of the drops and costs and, for two epochs or more, the training curves;
* the learning-rate study (when runs at other rates exist): accuracy against lr_pulses;
* each sensitivity sweep (when runs of a scaled knob exist): accuracy against the knob, and the
  largest value within 0.5 and 1 point of the mean model.

Each file says the machine, the dates of the runs, the seeds and the commands that made it.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from .ablation_configs import KNOBS, NOISE, STUDIES, Study, lr_study, sensitivity_study
from .ablation_statistics import (ADDED_VIEW, REMOVED_VIEW, ablation_rows, best_lr, imperfection_costs,
                                  interaction, learning_curves, lr_rows, saturation_effects, saturation_sentences,
                                  sensitivity, tolerance, verdict)
from .device.config import HfOxWeakReset
from .report_files import PNG_METADATA, REPORT_COMMAND, pyplot

DEFAULT_SEEDS = [0, 1, 2]
TOLERANCES = (0.005, 0.01)
"""Losses against the mean model a sensitivity report reads the tolerated knob at: 0.5 and 1 point."""


def load_summaries(root: Path) -> dict:
    """{(dataset, budget): {run directory: [summary, ...]}} from ``root``/<dataset>/<budget>/<directory>/seed*/."""
    studies = defaultdict(lambda: defaultdict(list))
    for path in sorted(root.glob("*/*/*/seed*/summary.json")):
        run_dir, budget_dir, dataset_dir = path.parents[1], path.parents[2], path.parents[3]
        studies[(dataset_dir.name, budget_dir.name)][run_dir.name].append(json.loads(path.read_text()))
    return studies


def published_epochs(dataset: str) -> int:
    from .train import PUBLISHED

    return PUBLISHED[dataset]["epochs"]


def default_lr(dataset: str) -> float:
    from .train import PUBLISHED

    return PUBLISHED[dataset]["lr_pulses"]


def directory_of(slug: str, lr: float | None, default: float) -> str:
    """The run directory of a configuration's slug at pulse learning rate ``lr`` (None: the default)."""
    return slug if lr is None or lr == default else f"{slug}-lr{lr:g}"


def study_runs(directories: dict, study: Study, lr: float | None = None, default: float = 20.0) -> dict:
    """{label: [summary, ...]} of ``study``'s configurations that have runs, in the study's order."""
    runs = {}
    for label, config in study.configs.items():
        found = directories.get(directory_of(config.slug, lr, default))
        if found:
            runs[label] = sorted(found, key=lambda s: s["seed"])
    return runs


def ablation_command(dataset: str, summary: dict, study: str = "", seeds: list[int] | None = None) -> str:
    """The rramk.ablation command whose runs a study's summaries are (``study``: its extra flags)."""
    epochs, limit = summary["epochs"], summary["settings"].get("limit_train")
    settings = summary["settings"]
    if not limit:  # every training example: --full, with the epochs if not the published number
        flags = "--full" + ("" if epochs == published_epochs(dataset) else f" --epochs {epochs}")
    else:
        flags = f"--epochs {epochs}" + (f" --limit-train {limit}" if limit else "")
    network = settings.get("network") or ("vgg" if dataset == "cifar10" else "mlp")
    if network == "mlp" and settings.get("hidden", 3000) != 3000:
        flags += f" --hidden {settings['hidden']}"
    if network == "vgg" and dataset != "cifar10":
        flags += " --network vgg"
    if network == "vgg":
        flags += f" --width {settings.get('width', 1.0):g}"
    if settings.get("preset"):
        flags += f" --preset {settings['preset']}"
    if study:
        flags += f" {study}"
    if seeds is not None and sorted(seeds) != DEFAULT_SEEDS:
        flags += " --seeds " + " ".join(map(str, sorted(seeds)))
    return f"python -m rramk.ablation {dataset} {flags}"


def _all_runs(runs: dict) -> list[dict]:
    return [s for v in runs.values() for s in v]


def _machine_names(runs: list[dict]) -> str:
    return "; ".join(sorted({s["machine"].get("gpu") or s["machine"].get("cpu") for s in runs}))


def _machines(runs: list[dict]) -> str:
    return f"{_machine_names(runs)}; torch {runs[0]['machine']['torch']}"


def _dates(runs: list[dict]) -> str:
    return f"{min(s['date'] for s in runs)} to {max(s['date'] for s in runs)}"


def _per_cell(runs: dict) -> str:
    """How many seeds each cell (configuration) has: ``3 seeds per cell``, ``1 to 3 seeds per cell``."""
    counts = sorted({len(v) for v in runs.values()})
    return (f"{counts[0]} seeds" if len(counts) == 1 else f"{counts[0]} to {counts[-1]} seeds") + " per cell"


def _seeds(runs: dict) -> tuple[list[int], str]:
    """The seeds of the study, and a sentence on how many each cell has."""
    seeds = sorted({s["seed"] for v in runs.values() for s in v})
    return seeds, f"{_per_cell(runs)} (seeds {', '.join(map(str, seeds))}; the seeds column of each table)"


def _budget_words(summary: dict) -> str:
    limit = summary["settings"].get("limit_train")
    return (f"{summary['epochs']} epochs, {'all' if not limit else limit} training examples, "
            f"lr_pulses {summary['settings']['lr_pulses']:g}")


def _pct(value: float, se: float = float("nan"), signed: bool = False) -> str:
    if math.isnan(value):
        return ""
    text = f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"
    return text + ("" if math.isnan(se) else f" ± {100 * se:.2f}")


def _accuracy_table(rows: list[dict], study: Study) -> str:
    return tabulate([[r["config"], study.configs[r["config"]].slug, r["imperfections"], r["seeds"],
                      f"{100 * r['mean']:.2f}", "" if math.isnan(r["std"]) else f"{100 * r['std']:.2f}",
                      f"{100 * r['min']:.2f} - {100 * r['max']:.2f}", f"{100 * r['best']:.2f}",
                      "" if math.isnan(r["drop"]) else f"{100 * r['drop']:+.2f}",
                      "" if math.isnan(r["pulses"]) else f"{r['pulses']:.0f}",
                      "" if math.isnan(r["past_t_star"]) else f"{100 * r['past_t_star']:.1f}"] for r in rows],
                    headers=["configuration", "runs in", "imperfections on", "seeds", "test accuracy (%)", "std (%)",
                             "range (%)", "best epoch (%)", "drop vs ideal (points)", "pulses/device",
                             "past t* (%)"], tablefmt="github", disable_numparse=True)


# ----------------------------------------------------------------------------- the published study


def write_ablation(dataset: str, budget: str, runs: dict, out_dir: Path, study: Study = STUDIES["published"]
                   ) -> tuple[list[Path], dict]:
    """ablation_<dataset>_<budget>.md and .png (and _curves.png) of the published study; (paths, answers)."""
    ranked_labels = [label for label in study.labels if label not in study.no_saturation.values()]
    rows = ablation_rows(runs, study.labels)
    if not rows:
        return [], {}
    main_rows = [r for r in rows if r["config"] in ranked_labels]
    name = f"ablation_{dataset}_{budget}"
    first = _all_runs(runs)[0]
    seeds, seeds_line = _seeds(runs)
    lines = [f"# Accuracy lost per device imperfection: {dataset}, {budget}\n",
             f"- Machine: {_machines(_all_runs(runs))}",
             f"- Dates of the runs: {_dates(_all_runs(runs))}",
             f"- Runs: `{ablation_command(dataset, first, seeds=seeds)}` ({_budget_words(first)})",
             f"- Seeds: {seeds_line}",
             f"- This file: `{REPORT_COMMAND}`\n",
             "The published study's framing (MODEL.md section 4): the base is the **mean model**, every device "
             "with the mean parameters and both slopes; the three imperfections ranked are its sources of "
             "variation, **d2d**, **pink** and **rtn**, each added alone to the mean model (`mean + X`) and "
             "removed alone from the full model (`full but X`); `ideal` is the software BNN. Saturation is a "
             "property of the device, shown separately below and never ranked.\n",
             "Test accuracy after the last epoch, mean over seeds; best epoch = mean over seeds of the best "
             "epoch's test accuracy; drop = ideal mean - this mean; pulses/device and past t* (devices beyond "
             "their saturation onset) are read from the devices at the end of training; runs in = the run "
             "directory under reports/ablation/summaries/<dataset>/<budget>/ (shared with the legacy study).\n",
             _accuracy_table(main_rows, study), ""]
    costs = imperfection_costs(rows, study)
    answers = {}
    if any(not math.isnan(c["added"]) or not math.isnan(c["removed"]) for c in costs):
        lines.append("## Which imperfection costs the most?\n")
        lines.append(f"Cost of d2d, pink and rtn in accuracy points (± standard error over seeds): {ADDED_VIEW} "
                     f"({study.mean} - {study.added.format('X')}), and {REMOVED_VIEW} "
                     f"({study.removed.format('X')} - {study.full}).\n")
        lines.append(tabulate([[c["imperfection"], _pct(c["added"], c["added_se"], True),
                                _pct(c["removed"], c["removed_se"], True)] for c in costs],
                              headers=["imperfection", ADDED_VIEW, REMOVED_VIEW], tablefmt="github",
                              disable_numparse=True))
        lines.append("")
        said = verdict(costs)
        lines.extend(said)
        lines.extend(interaction(rows, costs, study.mean, study.full, "the mean model"))
        answers["costs"], answers["verdict"] = costs, said
        answers["seeds"] = sorted({r["seeds"] for r in main_rows})
    effects = saturation_effects(rows, study)
    if effects:
        lines.append("\n## Saturation: a property of the device, not ranked\n")
        lines.append("Each configuration with its two slopes (as fitted) and without saturation (m2 = m1: one "
                     "slope, the device never slows down); saturation costs = accuracy without - with "
                     "(± standard error over seeds).\n")
        lines.append(tabulate([[e["config"], f"{100 * e['with']['mean']:.2f}", f"{100 * e['without']['mean']:.2f}",
                                _pct(e["cost"], e["se"], True), f"{e['with']['seeds']} / {e['without']['seeds']}",
                                "" if math.isnan(e["with"]["past_t_star"]) else
                                f"{100 * e['with']['past_t_star']:.1f}"] for e in effects],
                              headers=["configuration", "with saturation (%)", "without (%)",
                                       "saturation costs (points)", "seeds (with / without)", "past t* (%)"],
                              tablefmt="github", disable_numparse=True))
        lines.append("")
        lines.extend(saturation_sentences(runs, rows, study))
    curves = learning_curves(runs, ranked_labels)
    written = []
    if max((len(c["epoch"]) for c in curves.values()), default=0) >= 2:
        curves_png = out_dir / f"{name}_curves.png"
        plot_learning_curves(curves, curves_png, f"{dataset}, {budget}", study)
        written.append(curves_png)
        lines.append(f"\nTraining curves, test accuracy and devices past t* per epoch (mean over seeds, band: "
                     f"min-max): [{curves_png.name}]({curves_png.name}).")
    lines.append("\nThe first study's framing (base `none`, the one-slope mean device; saturation ranked as a fourth "
                 "imperfection) is retired from reports/, because MODEL.md section 4 ranks only the three sources "
                 "of variation on the two-slope mean model. Every one of its runs is a row of this report (none = "
                 "mean model, no saturation; only saturation = mean model; only X = mean + X, no saturation; "
                 "all = full model; all but saturation = full model, no saturation; all but X = full but X): "
                 f"`{ablation_command(dataset, first, '--study legacy', seeds)}` reruns exactly its configurations.")
    missing = [c for c in study.labels if c not in runs]
    if missing:
        lines.append(f"\nNot finished yet: {', '.join(missing)}.")
    md = out_dir / f"{name}.md"
    md.write_text("\n".join(lines) + "\n")
    png = out_dir / f"{name}.png"
    plot_ablation(main_rows, costs, png, f"{dataset}, {budget}")
    return [md, png] + written, answers


def plot_ablation(rows: list[dict], costs: list[dict], path: Path, title: str) -> None:
    """Left: the drop of every configuration against the ideal BNN (error bar: std over seeds).
    Right: the cost of each ranked imperfection in both views of the study (error bar: standard error)."""
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
        err = [0.0 if math.isnan(c[f"{key}_se"]) else 100 * c[f"{key}_se"] for c in costs]
        ax_cost.barh([i + offset for i in y], values, height=0.38, xerr=err, color=color, alpha=0.8, capsize=3,
                     label=label)
    ax_cost.set_yticks(y, names)
    ax_cost.invert_yaxis()
    ax_cost.axvline(0, color="k", lw=0.8)
    ax_cost.set_xlabel("accuracy cost (points)\nerror bar: standard error over seeds")
    ax_cost.set_title("cost of each imperfection", fontsize=10)
    ax_cost.legend(fontsize=8)
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
    axes[0, 0].set_ylabel("test accuracy (%)")
    axes[1, 0].set_ylabel("devices past t* (%)")
    fig.suptitle(f"Training under each device imperfection ({title})")
    fig.tight_layout()
    fig.savefig(path, metadata=PNG_METADATA)
    plt.close(fig)


# ----------------------------------------------------------------------------- the learning-rate study


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
    default = default_lr(dataset)
    study = lr_study(())
    lrs = lrs_found(directories, study, default)
    if lrs in ([], [default]):
        return [], {}
    by_lr = {lr: study_runs(directories, study, lr, default) for lr in lrs}
    table = lr_rows(by_lr, (study.mean, study.full))
    runs = [s for r in by_lr.values() for s in _all_runs(r)]
    first = runs[0]
    seeds, seeds_line = _seeds({(lr, k): v for lr, r in by_lr.items() for k, v in r.items()})
    command = ablation_command(dataset, first, "--study lr --lr-pulses " + " ".join(f"{lr:g}" for lr in lrs), seeds)
    name = f"ablation_{dataset}_{budget}_lr"
    lines = [f"# Pulse learning rate: {dataset}, {budget}\n",
             f"- Machine: {_machines(runs)}",
             f"- Dates of the runs: {_dates(runs)}",
             f"- Runs: `{command}` ({first['epochs']} epochs, "
             f"{first['settings'].get('limit_train') or 'all'} training examples)",
             f"- Seeds: {seeds_line}",
             f"- This file: `{REPORT_COMMAND}`\n",
             "Test accuracy after the last epoch (mean ± standard error over seeds) of the mean model and the "
             "full model at each pulse learning rate (lr_pulses: pulses per unit of Adam step, halved every 7 "
             "epochs; the published runs used 8 to 100, MODEL.md section 3); cost = mean model - full model.\n"]
    cells = []
    for r in table:
        mean, full = r["rows"].get(study.mean), r["rows"].get(study.full)
        cells.append([f"{r['lr']:g}" + (" (default)" if r["lr"] == default else ""),
                      "" if mean is None else _pct(mean["mean"], mean["se"]),
                      "" if full is None else _pct(full["mean"], full["se"]), _pct(r["cost"], r["cost_se"], True),
                      " / ".join(str(x["seeds"]) if x else "0" for x in (mean, full)),
                      "" if full is None or math.isnan(full["past_t_star"]) else f"{100 * full['past_t_star']:.1f}"])
    lines.append(tabulate(cells, headers=["lr_pulses", f"{study.mean} (%)", f"{study.full} (%)",
                                          "cost (points)", "seeds (mean / full)", "full: past t* (%)"],
                          tablefmt="github", disable_numparse=True))
    lines.append("\n## Which default rramk uses, and why\n")
    said = best_lr(table, study.full, default) + best_lr(table, study.mean, default)
    lines.append(f"rramk trains at lr_pulses {default:g} unless told otherwise (`python -m rramk.train --lr-pulses`, "
                 "`rramk.train.DATASETS`). Measured at this budget:\n")
    lines.extend(said)
    best_full = max((r for r in table if study.full in r["rows"]), key=lambda r: r["rows"][study.full]["mean"],
                    default=None)
    if best_full is not None:
        keep = best_full["lr"] == default or any("within 2 standard errors" in s for s in said[:1])
        lines.append("- " + (f"so the measurements support the default {default:g} for the full model at this "
                             "budget." if keep else
                             f"so at this budget the full model prefers lr_pulses {best_full['lr']:g} beyond 2 "
                             f"standard errors; the default stays {default:g} (the published MNIST setting) until "
                             "the full 20-epoch study confirms it."))
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


def sweeps_found(directories: dict) -> list[tuple[str, str, list[float]]]:
    """(knob, base, factors) of every sweep with a run of a scaled configuration in ``directories``."""
    published = STUDIES["published"].configs
    found = []
    for knob, spec in KNOBS.items():
        for base in ("mean", "full"):
            if base == "mean" and spec.imperfection in NOISE:
                stem = published[f"mean + {spec.imperfection}"].slug + "-x"
            else:
                stem = f"{base}-{knob}-x"
            factors = sorted(float(name[len(stem):]) for name in directories
                             if name.startswith(stem) and re.fullmatch(r"[0-9.e+-]+", name[len(stem):]))
            if factors:
                found.append((knob, base, factors))
    return found


def write_sensitivity(dataset: str, budget: str, directories: dict, knob: str, base: str, factors: list[float],
                      out_dir: Path) -> tuple[list[Path], dict]:
    """ablation_<dataset>_<budget>_sensitivity-<knob>[-full].md and .png: accuracy against the knob."""
    from .device.weak_reset import knob_measures

    spec = KNOBS[knob]
    extra = [0.0] if spec.zero_is_off or base == "mean" else []
    study = sensitivity_study(knob, tuple(sorted(set(factors) | {1.0, *extra})), base)
    runs = study_runs(directories, study, None, default_lr(dataset))
    rows = ablation_rows(runs, study.labels)
    any_run = next(iter(_all_runs(runs)), {})  # the device of --preset, which its summary records (None: the fit)
    preset = HfOxWeakReset.from_dict(any_run["preset"]["device"]) if any_run.get("preset") else None
    measures = {label: knob_measures(config.device(preset)) for label, config in study.configs.items()}
    points = sensitivity(rows, study, {label: m[spec.measure] for label, m in measures.items()})
    if not points:
        return [], {}
    all_runs = _all_runs(runs)
    first = all_runs[0]
    seeds, seeds_line = _seeds(runs)
    swept = ",".join(f"{v:g}" for v in sorted(study.values.values()))
    flags = f"--study sensitivity --knob {knob} --values {swept}" + ("" if base == spec.base else f" --base {base}")
    name = f"ablation_{dataset}_{budget}_sensitivity-{knob}" + ("" if base == spec.base else f"-{base}")
    on = f"the mean model plus {spec.imperfection}" if base == "mean" and spec.imperfection in NOISE else \
        ("the mean model" if base == "mean" else "the full model")
    lines = [f"# Sensitivity to {knob}: {dataset}, {budget}\n",
             f"- Machine: {_machines(all_runs)}",
             f"- Dates of the runs: {_dates(all_runs)}",
             f"- Runs: `{ablation_command(dataset, first, flags, seeds)}` ({_budget_words(first)})",
             f"- Seeds: {seeds_line}",
             f"- This file: `{REPORT_COMMAND}`\n",
             f"The knob `{knob}` of `HfOxWeakReset.scaled` (a factor on the published fit, 1 = the fit), swept on "
             f"{on}; in the unit a device engineer measures: {spec.unit} (`rramk.device.weak_reset.knob_measures`, "
             "over the devices the configuration draws). Loss = mean model - this configuration, in accuracy "
             "points (means over seeds, ± standard error).\n"]
    header = ["factor", spec.unit, "configuration", "seeds", "test accuracy (%)", "loss vs mean model (points)",
              "past t* (%)"]
    extra_cols = [("sigma_m1", "sigma of m1 (1/pulse)"), ("median_t_star", "median t* (pulses)")] \
        if knob == "d2d" else []
    cells = []
    for p in points:
        m = measures[p["config"]]
        cells.append([f"{p['factor']:g}", f"{p['measure']:.4g}", p["config"], p["seeds"], _pct(p["mean"], p["se"]),
                      _pct(p["loss"], p["loss_se"], True),
                      "" if math.isnan(p["past_t_star"]) else f"{100 * p['past_t_star']:.1f}",
                      *(f"{m[k]:.4g}" for k, _ in extra_cols)])
    lines.append(tabulate(cells, headers=header + [h for _, h in extra_cols], tablefmt="github",
                          disable_numparse=True))
    lines.append("\n## How much is tolerable?\n")
    answers = {}
    for tol in TOLERANCES:
        at = tolerance(points, tol)
        sure, hopeful = tolerance(points, tol, shift=1.0), tolerance(points, tol, shift=-1.0)
        in_unit = tolerance(points, tol, key="measure")
        if at["kind"] == "none":
            text = (f"even the smallest factor swept ({points[0]['factor']:g}) loses more than {100 * tol:.1f} "
                    "point")
        elif at["kind"] == "beyond":
            text = (f"every factor swept keeps the loss within {100 * tol:.1f} point: the tolerance lies beyond "
                    f"{at['value']:g} ({spec.unit} {in_unit['value']:.4g})")
        else:
            text = (f"up to factor **{at['value']:.2f}** ({spec.unit} ≈ {in_unit['value']:.3g}) the loss stays "
                    f"within {100 * tol:.1f} point of the mean model (factor {_range(sure)} to {_range(hopeful)} "
                    "when every loss moves by one standard error)")
        lines.append(f"- within {100 * tol:.1f} point: {text}.")
        answers[tol] = {"tolerance": at, "measure": in_unit, "text": text}
    better = [p for p in points if p["loss"] < 0 and not math.isnan(p["loss_se"]) and p["loss"] < -2 * p["loss_se"]]
    if better:
        lines.append(f"- at this budget, {len(better)} of the {len(points)} factors swept train *better* than the mean "
                     "model beyond 2 standard errors (negative loss): identical devices all read W = +1 at the start "
                     "(a tie, MODEL.md section 2), so the mean model starts from a worse network, and a knob's cost "
                     "shows only once devices pass t* (the past t* column). Read a tolerance at this budget as what "
                     "early training tolerates, not as the answer at the published budget.")
    lines.append("\nHow: going up the sweep from its smallest factor, the first swept value whose loss exceeds the "
                 "tolerance ends the range; the answer is interpolated linearly between that value and the one "
                 "before it, in the factor and, separately, in the measured unit. The published fit is factor 1.")
    png = out_dir / f"{name}.png"
    plot_sensitivity(points, runs, study, png, f"{dataset}, {budget}", knob, spec.unit)
    lines.append(f"\nAccuracy against the knob: [{png.name}]({png.name}).")
    md = out_dir / f"{name}.md"
    md.write_text("\n".join(lines) + "\n")
    return [md, png], {"knob": knob, "base": base, "budget": budget, "seeds": seeds, "points": points,
                       "tolerances": answers, "unit": spec.unit, "file": md.name, "runs": len(all_runs),
                       "better": len(better),
                       "command": ablation_command(dataset, first, flags, seeds),
                       "when": f"{_machine_names(all_runs)}, {_dates(all_runs)}"}


def _range(t: dict) -> str:
    return {"none": "none", "beyond": f">= {t['value']:g}"}.get(t["kind"], f"{t['value']:.2f}")


def plot_sensitivity(points: list[dict], runs: dict, study: Study, path: Path, title: str, knob: str,
                     unit: str) -> None:
    """Accuracy (mean ± standard error) against the knob's factor, the measured unit on the top axis,
    the mean model and the 0.5 and 1 point tolerances as horizontal lines."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.4), dpi=150)
    x = [p["factor"] for p in points]
    ax.errorbar(x, [100 * p["mean"] for p in points], yerr=[0 if math.isnan(p["se"]) else 100 * p["se"]
                                                            for p in points],
                color="tab:red", marker="o", capsize=3, label=f"{knob} swept (n={max(p['seeds'] for p in points)})")
    mean_runs = runs.get(study.mean)
    if mean_runs:
        mean = sum(s["final_test_accuracy"] for s in mean_runs) / len(mean_runs)
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
    top.set_xticks(x, [f"{p['measure']:.3g}" for p in points], fontsize=7)
    top.set_xlabel(unit, fontsize=8)
    fig.suptitle(f"Sensitivity to {knob} ({title})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, metadata=PNG_METADATA)
    plt.close(fig)


# ----------------------------------------------------------------------------- every study


def _budget_rank(budget: str) -> tuple:
    """Sort key of budgets: more epochs, then all examples before a limit, then a larger limit."""
    epochs = int(re.match(r"epochs(\d+)", budget).group(1)) if re.match(r"epochs(\d+)", budget) else 0
    limit = re.search(r"-n(\d+)", budget)
    return (epochs, math.inf if limit is None else int(limit.group(1)))


def write_ablation_reports(reports: Path) -> tuple[list[tuple[str, str, str, str]], dict]:
    """The files of every study under ``reports``/ablation/summaries; their rows of the index and the
    answers the index leads with ({"published": ..., "sensitivity": [...], "lr": ...}, largest budget first)."""
    entries, answers = [], {"published": [], "sensitivity": [], "lr": []}
    for (dataset, budget), directories in sorted(load_summaries(reports / "ablation" / "summaries").items()):
        default = default_lr(dataset)
        published = study_runs(directories, STUDIES["published"], None, default)
        if "ideal" in published:
            files, said = write_ablation(dataset, budget, published, reports)
            runs = _all_runs(published)
            command = ablation_command(dataset, runs[0], seeds=sorted({s["seed"] for s in runs}))
            for f in files:
                what = "training curves per imperfection" if f.stem.endswith("_curves") else \
                    "accuracy per imperfection (published framing)"
                entries.append((f.name, f"{what}, {dataset} {budget} ({len(runs)} runs, {_per_cell(published)})",
                                f"{_machine_names(runs)}, {_dates(runs)}", f"{command} && {REPORT_COMMAND}"))
            if said:
                answers["published"].append({"dataset": dataset, "budget": budget, "file": files[0].name, **said})
        files, said = write_lr(dataset, budget, directories, reports)
        if files:
            study = lr_study(())
            lrs = lrs_found(directories, study, default)
            by_lr = {lr: study_runs(directories, study, lr, default) for lr in lrs}
            runs = [s for r in by_lr.values() for s in _all_runs(r)]
            flags = "--study lr --lr-pulses " + " ".join(f"{lr:g}" for lr in lrs)
            command = ablation_command(dataset, runs[0], flags, sorted({s["seed"] for s in runs}))
            for f in files:
                entries.append((f.name, f"accuracy against the pulse learning rate, {dataset} {budget} "
                                f"({len(runs)} runs)", f"{_machine_names(runs)}, {_dates(runs)}",
                                f"{command} && {REPORT_COMMAND}"))
            answers["lr"].append({"dataset": dataset, "budget": budget, "file": files[0].name, **said})
        for knob, base, factors in sweeps_found(directories):
            files, said = write_sensitivity(dataset, budget, directories, knob, base, factors, reports)
            for f in files:
                entries.append((f.name, f"accuracy against the {knob} knob, {dataset} {budget} ({said['runs']} runs)",
                                said["when"], f"{said['command']} && {REPORT_COMMAND}"))
            if files:
                answers["sensitivity"].append({"dataset": dataset, **said})
    for key in answers:
        answers[key].sort(key=lambda a: (a["dataset"] != "mnist", tuple(-x for x in _budget_rank(a["budget"]))))
    return entries, answers
