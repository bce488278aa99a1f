"""The ablation study's report: ``reports/ablation_<dataset>_<budget>.md`` and its figures.

Input: ``reports/ablation/summaries/<dataset>/<budget>/<config slug>/seed<k>/summary.json``, the
finished runs of ``python -m rramk.ablation`` (any subset: a study in progress, or the shards of a
job array that have finished). Per study: a markdown table of every configuration over seeds, the
cost of each imperfection with the verdict (rramk.ablation_statistics), a figure of the drops and
costs, and, for two epochs or more, the training curves. Each file says the machine, the dates of
the runs and the commands that made it.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from .ablation_configs import ABLATIONS, label_of
from .ablation_statistics import (ablation_rows, identical_to_none, imperfection_costs, interaction, learning_curves,
                                  verdict)
from .report_files import PNG_METADATA, REPORT_COMMAND, pyplot


def load_summaries(root: Path) -> dict:
    """{(dataset, budget): {config label: [summary, ...]}} from ``root``/<dataset>/<budget>/<config>/seed*/."""
    studies = defaultdict(lambda: defaultdict(list))
    for path in sorted(root.glob("*/*/*/seed*/summary.json")):
        config_dir, budget_dir, dataset_dir = path.parents[1], path.parents[2], path.parents[3]
        label = label_of(config_dir.name)
        studies[(dataset_dir.name, budget_dir.name)][label].append(json.loads(path.read_text()))
    return studies


def ablation_command(dataset: str, summary: dict) -> str:
    """The rramk.ablation command whose runs a study's summaries are."""
    epochs, limit = summary["epochs"], summary["settings"].get("limit_train")
    settings = summary["settings"]
    if dataset == "mnist" and epochs == 20 and not limit:
        flags = "--full"
    else:
        flags = f"--epochs {epochs}" + (f" --limit-train {limit}" if limit else "")
    if dataset == "mnist" and settings.get("hidden", 3000) != 3000:
        flags += f" --hidden {settings['hidden']}"
    if dataset == "cifar10":
        flags += f" --width {settings.get('width', 1.0):g}"
    return f"python -m rramk.ablation {dataset} {flags}"


def write_ablation(dataset: str, budget: str, study: dict, out_dir: Path) -> list[Path]:
    """ablation_<dataset>_<budget>.md and .png (and _curves.png) of one study in ``out_dir``; the paths."""
    rows = ablation_rows(study)
    if not rows:
        return []
    name = f"ablation_{dataset}_{budget}"
    table = tabulate([[r["config"], r["imperfections"], r["seeds"], f"{100 * r['mean']:.2f}",
                       "" if math.isnan(r["std"]) else f"{100 * r['std']:.2f}",
                       f"{100 * r['min']:.2f} - {100 * r['max']:.2f}", f"{100 * r['best']:.2f}",
                       "" if math.isnan(r["drop"]) else f"{100 * r['drop']:+.2f}",
                       "" if math.isnan(r["pulses"]) else f"{r['pulses']:.0f}",
                       "" if math.isnan(r["past_t_star"]) else f"{100 * r['past_t_star']:.1f}"] for r in rows],
                     headers=["configuration", "imperfections on", "seeds", "test accuracy (%)", "std (%)",
                              "range (%)", "best epoch (%)", "drop vs ideal (points)", "pulses/device", "past t* (%)"],
                     tablefmt="github", disable_numparse=True)
    first = next(iter(study.values()))[0]
    epochs = first["epochs"]
    limit = first["settings"].get("limit_train")
    lines = [f"# Accuracy lost per device imperfection: {dataset}, {budget}\n",
             f"- Machine: {first['machine'].get('gpu') or first['machine'].get('cpu')}; torch {first['machine']['torch']}",
             f"- Dates of the runs: {min(s['date'] for v in study.values() for s in v)} to "
             f"{max(s['date'] for v in study.values() for s in v)}",
             f"- Runs: `{ablation_command(dataset, first)}` ({epochs} epochs, "
             f"{'all' if not limit else limit} training examples, lr_pulses {first['settings']['lr_pulses']:g})",
             f"- This file: `{REPORT_COMMAND}`\n",
             "Test accuracy after the last epoch, mean over seeds; best epoch = mean over seeds of the best "
             "epoch's test accuracy; drop = ideal mean - this mean; pulses/device and past t* (devices beyond "
             "their saturation onset) are read from the devices at the end of training.\n",
             table, ""]
    costs = imperfection_costs(rows)
    if any(not math.isnan(c["added"]) or not math.isnan(c["removed"]) for c in costs):
        def cell(value, se):
            return "" if math.isnan(value) else f"{100 * value:+.2f}" + ("" if math.isnan(se) else f" ± {100 * se:.2f}")

        lines.append("## Which imperfection costs the most?\n")
        lines.append("Cost of each imperfection in accuracy points (± standard error over seeds): added alone to "
                     "the mean device (none - only X), and removed alone from the full model (all but X - all).\n")
        lines.append(tabulate([[c["imperfection"], cell(c["added"], c["added_se"]), cell(c["removed"], c["removed_se"])]
                               for c in costs], headers=["imperfection", "added alone", "removed alone"],
                              tablefmt="github", disable_numparse=True))
        lines.append("")
        lines.extend(verdict(costs))
        lines.extend(interaction(rows, costs))
        lines.extend(identical_to_none(study))
    curves = learning_curves(study)
    written = []
    if max((len(c["epoch"]) for c in curves.values()), default=0) >= 2:
        curves_png = out_dir / f"{name}_curves.png"
        plot_learning_curves(curves, curves_png, f"{dataset}, {budget}")
        written.append(curves_png)
        lines.append(f"\nTraining curves, test accuracy and devices past t* per epoch (mean over seeds, band: "
                     f"min-max): [{curves_png.name}]({curves_png.name}).")
    missing = [c for c in ABLATIONS if c not in study]
    if missing:
        lines.append(f"\nNot finished yet: {', '.join(missing)}.")
    md = out_dir / f"{name}.md"
    md.write_text("\n".join(lines) + "\n")
    png = out_dir / f"{name}.png"
    plot_ablation(rows, costs, png, f"{dataset}, {budget}")
    return [md, png] + written


def plot_ablation(rows: list[dict], costs: list[dict], path: Path, title: str) -> None:
    """Left: the drop of every configuration against the ideal BNN (error bar: std over seeds).
    Right: the cost of each imperfection in both views of the study (error bar: standard error)."""
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
    for offset, key, color, label in ((-0.2, "added", "tab:gray", "added alone to none"),
                                      (0.2, "removed", "tab:red", "removed alone from all")):
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


def plot_learning_curves(curves: dict[str, dict], path: Path, title: str) -> None:
    """Two columns (each imperfection alone on the mean device; the full model minus each one), two
    rows (test accuracy; fraction of devices past their saturation onset t*) against epochs."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4), dpi=150, sharex=True, sharey="row",
                             gridspec_kw={"height_ratios": [2, 1]})
    for col, (prefix, base, heading) in enumerate((("only ", "none", "each imperfection alone"),
                                                   ("all but ", "all", "the full model minus one"))):
        labels = ["ideal", base] + [l for l in curves if l.startswith(prefix)]
        for label in labels:
            if label not in curves:
                continue
            c = curves[label]
            color, style = CURVE_STYLE.get(label.removeprefix(prefix), ("tab:blue", "-"))
            if label.startswith("all but "):
                style = "-."
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


def write_ablation_reports(reports: Path) -> list[tuple[str, str, str, str]]:
    """The files of every study under ``reports``/ablation/summaries; their rows of the index."""
    entries = []
    for (dataset, budget), study in sorted(load_summaries(reports / "ablation" / "summaries").items()):
        files = write_ablation(dataset, budget, study, reports)
        runs = [s for v in study.values() for s in v]
        when = f"{runs[0]['machine'].get('gpu') or runs[0]['machine'].get('cpu')}, " \
               f"{min(s['date'] for s in runs)} to {max(s['date'] for s in runs)}"
        for f in files:
            what = "training curves per imperfection" if f.stem.endswith("_curves") else "accuracy per imperfection"
            entries.append((f.name, f"{what}, {dataset} {budget} ({len(runs)} runs)", when,
                            f"{ablation_command(dataset, runs[0])} && {REPORT_COMMAND}"))
    return entries
