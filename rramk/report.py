"""Tables and figures in reports/ from saved results: ``python -m rramk.report``.

Inputs (all committed under reports/):

* ``reports/bench/*.json``: results of ``pytest bench --benchmark-only`` (written by bench/conftest.py);
* ``reports/ablation/summaries/<dataset>/<budget>/<config>/seed<k>/summary.json``: finished runs
  of ``python -m rramk.ablation``;
* ``reports/characterization/``: figures of ``python -m rramk.characterize`` (indexed only).

Outputs: ``reports/speed.md`` and ``reports/speed_update.png`` (time against size of the device
update), ``reports/ablation_<dataset>_<budget>.md`` and ``.png`` (accuracy and its drop against
the ideal BNN per configuration, over seeds), ``reports/ablation_<dataset>_<budget>_curves.png``
(test accuracy and devices past t* per epoch, for studies of two epochs or more), and ``reports/README.md``, the index, which says
for every file the machine, the date and the command that regenerates it. The same inputs give
the same files (dates and machines come from the inputs, not from the clock).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from .ablation import CONFIGS, slug

REPORT_COMMAND = "python -m rramk.report"
PNG_METADATA = {"Software": None}  # no version string: identical inputs give identical bytes


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ----------------------------------------------------------------------------- speed


def load_benchmarks(bench_dir: Path) -> list[dict]:
    """Every benchmark record of every JSON file in ``bench_dir``, with its source file."""
    records = []
    for path in sorted(bench_dir.glob("*.json")):
        data = json.loads(path.read_text())
        for b in data.get("benchmarks", []):
            records.append({**b, "file": path.name, "session": data.get("session", {})})
    return records


def _fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def _fmt_rate(value: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.2f}"


DERIVED = ("synapse_updates_per_s", "gb_per_s", "tops", "images_per_s")


def _fmt_derived(name: str, value: float) -> str:
    if name == "tops":
        return f"{value:.3g} TOPS"
    if name == "gb_per_s":
        return f"{value:.1f} GB/s"
    return f"{_fmt_rate(value)} {name.replace('_per_s', '/s').replace('_', ' ')}"


def speed_tables(records: list[dict]) -> str:
    """Markdown: per benchmark file and operation, provider x shape with ratios to every alternative."""
    lines = []
    by_file = defaultdict(list)
    for r in records:
        by_file[r["file"]].append(r)
    for file, recs in by_file.items():
        session = recs[0]["session"]
        lines.append(f"## {file}\n")
        lines.append(f"- Machine: {session.get('machine', '?')}")
        lines.append(f"- Date: {session.get('date', '?')}")
        lines.append(f"- Command: `{session.get('command', 'pytest bench --benchmark-only')}`\n")
        by_op = defaultdict(list)
        for r in recs:
            operation = r["extra_info"].get("operation", r.get("group") or r["name"])
            if operation != "accuracy":  # its figures are accuracies: the ablation tables show them
                by_op[operation].append(r)
        for op, rs in by_op.items():
            providers = sorted({r["extra_info"].get("provider", "?") for r in rs})
            shapes = list(dict.fromkeys(r["extra_info"].get("shape", "") for r in rs))
            rows = []
            for shape in shapes:
                times = {r["extra_info"].get("provider"): r for r in rs if r["extra_info"].get("shape", "") == shape}
                for provider in providers:
                    if provider not in times:
                        continue
                    r = times[provider]
                    median = r["stats"]["median"]
                    derived = [_fmt_derived(k, r["extra_info"][k]) for k in DERIVED if k in r["extra_info"]]
                    ratios = [f"{times[o]['stats']['median'] / median:.2f}x vs {o}" for o in providers
                              if o != provider and o in times]
                    rows.append([shape, provider, _fmt_time(median), "; ".join(derived), "; ".join(ratios)])
            lines.append(f"### {op}\n")
            lines.append(tabulate(rows, headers=["shape", "provider", "median", "derived", "speed-up (time of other / this)"],
                                  tablefmt="github", disable_numparse=True))
            lines.append("")
    return "\n".join(lines)


def plot_update_scaling(records: list[dict], path: Path) -> bool:
    recs = [r for r in records if r["extra_info"].get("operation") == "device update"]
    if not recs:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=150)
    series = defaultdict(list)
    for r in recs:
        key = f"{r['extra_info'].get('provider')} ({r['file'].removesuffix('.json')})"
        series[key].append((r["extra_info"]["synapses"], r["stats"]["median"]))
    for key, points in sorted(series.items()):
        points.sort()
        ax.loglog([p[0] for p in points], [p[1] for p in points], marker="o", label=key)
    ax.set_xlabel("synapses updated")
    ax.set_ylabel("time per update (s)")
    ax.set_title("Device update: time against array size")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, metadata=PNG_METADATA)
    plt.close(fig)
    return True


# ----------------------------------------------------------------------------- ablation


def load_summaries(root: Path) -> dict:
    """{(dataset, budget): {config label: [summary, ...]}} from ``root``/<dataset>/<budget>/<config>/seed*/."""
    labels = {slug(label): label for label in CONFIGS}
    studies = defaultdict(lambda: defaultdict(list))
    for path in sorted(root.glob("*/*/*/seed*/summary.json")):
        config_dir, budget_dir, dataset_dir = path.parents[1], path.parents[2], path.parents[3]
        label = labels.get(config_dir.name, config_dir.name)
        studies[(dataset_dir.name, budget_dir.name)][label].append(json.loads(path.read_text()))
    return studies


def ablation_rows(study: dict) -> list[dict]:
    ideal = [s["final_test_accuracy"] for s in study.get("ideal", [])]
    ideal_mean = statistics.fmean(ideal) if ideal else None
    rows = []
    for label in CONFIGS:
        runs = study.get(label)
        if not runs:
            continue
        acc = [s["final_test_accuracy"] for s in runs]
        mean = statistics.fmean(acc)
        std = statistics.stdev(acc) if len(acc) > 1 else float("nan")
        rows.append({"config": label, "imperfections": runs[0]["imperfections"], "seeds": len(acc), "mean": mean,
                     "std": std, "min": min(acc), "max": max(acc),
                     "drop": (ideal_mean - mean) if ideal_mean is not None else float("nan"),
                     "best": statistics.fmean([s.get("best_test_accuracy", float("nan")) for s in runs]),
                     "past_t_star": statistics.fmean([s["history"][-1].get("fraction_past_t_star", float("nan"))
                                                      for s in runs]) if runs[0]["history"] else float("nan"),
                     "pulses": statistics.fmean([s["history"][-1].get("pulses_per_device", float("nan"))
                                                 for s in runs]) if runs[0]["history"] else float("nan")})
    return rows


def imperfection_costs(rows: list[dict]) -> list[dict]:
    """Accuracy cost of each imperfection, in both views of the study, with standard errors.

    added: acc(none) - acc(only X), the cost of X on the mean device alone;
    removed: acc(all but X) - acc(all), what removing X from the full model gives back.
    Standard errors are over seeds: sqrt(s1^2/n1 + s2^2/n2) (nan with one seed).
    """
    by_name = {r["config"]: r for r in rows}

    def diff(a: str, b: str):
        if a not in by_name or b not in by_name:
            return float("nan"), float("nan")
        ra, rb = by_name[a], by_name[b]
        se = math.sqrt(ra["std"] ** 2 / ra["seeds"] + rb["std"] ** 2 / rb["seeds"])
        return ra["mean"] - rb["mean"], se

    costs = []
    for name in CONFIGS:
        if not name.startswith("only "):
            continue
        x = name.removeprefix("only ")
        added, added_se = diff("none", f"only {x}")
        removed, removed_se = diff(f"all but {x}", "all")
        costs.append({"imperfection": x, "added": added, "added_se": added_se, "removed": removed,
                      "removed_se": removed_se})
    return costs


def verdict(costs: list[dict]) -> list[str]:
    """Plain sentences: which imperfection is the most damaging, and is the difference resolved?

    A cost is resolved when it exceeds 2 standard errors over seeds; with one seed per cell there
    is no error bar and the sentence says so.
    """
    usable = [c for c in costs if not math.isnan(c["added"]) and not math.isnan(c["removed"])]
    if not usable:
        return []

    def resolved(cost, se):
        return not math.isnan(se) and cost > 2 * se

    lines, worst = [], {}
    for view, key in (("added alone to the mean device", "added"), ("removed alone from the full model", "removed")):
        w = worst[key] = max(usable, key=lambda c: c[key])
        cost, se = w[key], w[f"{key}_se"]
        if math.isnan(se):
            lines.append(f"- {view}: **{w['imperfection']}** costs the most, {100 * cost:+.2f} points "
                         "(one seed: no error bar).")
        elif resolved(cost, se):
            runner = max((c for c in usable if c is not w), key=lambda c: c[key], default=None)
            lead = ""
            if runner is not None:
                gap, gap_se = cost - runner[key], math.hypot(se, runner[f"{key}_se"])
                lead = (f"; ahead of **{runner['imperfection']}** by {100 * gap:+.2f} ± {100 * gap_se:.2f}"
                        + ("" if resolved(gap, gap_se) else ", not resolved"))
            lines.append(f"- {view}: **{w['imperfection']}** costs the most, {100 * cost:+.2f} points "
                         f"(more than 2 standard errors: ± {100 * se:.2f}){lead}.")
        else:
            lines.append(f"- {view}: no imperfection costs accuracy beyond 2 standard errors (largest: "
                         f"**{w['imperfection']}**, {100 * cost:+.2f} ± {100 * se:.2f} points).")
    helps = [c["imperfection"] for c in usable if c["added"] < 0 and resolved(-c["added"], c["added_se"])]
    if helps:
        lines.append(f"- at this budget, adding {', '.join(helps)} alone *raises* accuracy beyond 2 standard errors.")
    d2d_worst = all(w["imperfection"] == "d2d" for w in worst.values())
    d2d_resolved = all(resolved(w[k], w[f"{k}_se"]) for k, w in worst.items())
    if d2d_worst and d2d_resolved:
        lines.append("- **Most damaging: device-to-device variability (d2d)**, as in the published study.")
    elif d2d_worst:
        lines.append("- d2d costs the most in both views, as in the published study, but the difference is not "
                     "resolved by these seeds.")
    else:
        lines.append("- The published study found device-to-device variability (d2d) most damaging; this study does "
                     "not single it out in both views: the costs above are the evidence.")
    return lines


def interaction(rows: list[dict], costs: list[dict]) -> list[str]:
    """Compare what all imperfections cost together (none - all) with the sum of their costs alone."""
    by_name = {r["config"]: r for r in rows}
    if "none" not in by_name or "all" not in by_name or any(math.isnan(c["added"]) for c in costs):
        return []
    none, full = by_name["none"], by_name["all"]
    together = none["mean"] - full["mean"]
    alone = sum(c["added"] for c in costs)
    se = math.sqrt(none["std"] ** 2 / none["seeds"] + full["std"] ** 2 / full["seeds"])
    line = (f"- together, the imperfections cost {100 * together:+.2f} points against the mean device (none - all"
            + ("" if math.isnan(se) else f", ± {100 * se:.2f}") + f"); the sum of their costs alone is "
            f"{100 * alone:+.2f}.")
    if together > 2 * max(alone, 0) and (math.isnan(se) or together > 2 * se):
        line += " Most of the loss comes from their combination, not from any one of them."
    return [line]


def identical_to_none(study: dict) -> list[str]:
    """A sentence for each imperfection that, alone, trained exactly like ``none`` in every seed."""
    def by_seed(label):
        return {s["seed"]: s["final_test_accuracy"] for s in study.get(label, [])}

    none = by_seed("none")
    lines = []
    for label in CONFIGS:
        if label.startswith("only "):
            alone = by_seed(label)
            if alone and all(seed in none and none[seed] == acc for seed, acc in alone.items()):
                lines.append(f"- {label.removeprefix('only ')} alone gives exactly the accuracy of none in every seed "
                             f"({len(alone)}): on identical, noise-free devices it changes no weight "
                             "(W = sign(t_BL - t_BLb) for any increasing ln R(t)).")
    return lines


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
    missing = [c for c in CONFIGS if c not in study]
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
    plt = _plt()
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


def learning_curves(study: dict) -> dict[str, dict]:
    """Per configuration: epoch numbers and, over seeds, the mean/min/max test accuracy and the mean
    fraction of devices past t*, for the epochs every seed of that configuration has finished."""
    curves = {}
    for label in CONFIGS:
        runs = study.get(label)
        if not runs or not all(s["history"] for s in runs):
            continue
        n = min(len(s["history"]) for s in runs)
        acc = [[s["history"][e]["test_accuracy"] for s in runs] for e in range(n)]
        past = [[s["history"][e].get("fraction_past_t_star", float("nan")) for s in runs] for e in range(n)]
        curves[label] = {"epoch": [runs[0]["history"][e]["epoch"] for e in range(n)],
                         "mean": [statistics.fmean(a) for a in acc], "min": [min(a) for a in acc],
                         "max": [max(a) for a in acc], "past_t_star": [statistics.fmean(p) for p in past],
                         "seeds": len(runs)}
    return curves


CURVE_STYLE = {"ideal": ("k", "--"), "none": ("0.55", "-"), "all": ("tab:red", "-"), "d2d": ("tab:red", ":"),
               "pink": ("tab:purple", "-."), "rtn": ("tab:green", "-."), "saturation": ("tab:orange", "-.")}


def plot_learning_curves(curves: dict[str, dict], path: Path, title: str) -> None:
    """Two columns (each imperfection alone on the mean device; the full model minus each one), two
    rows (test accuracy; fraction of devices past their saturation onset t*) against epochs."""
    plt = _plt()
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


# ----------------------------------------------------------------------------- index


def write_index(reports: Path, entries: list[tuple[str, str, str, str]]) -> Path:
    """reports/README.md: one row per file: file, what it is, machine and date, the command."""
    lines = ["# Reports\n",
             "Every file here is produced by a committed command. To regenerate the tables and figures from the "
             "saved results: `python -m rramk.report`.\n",
             tabulate([[f"[{f}]({f})", what, when, f"`{cmd}`"] for f, what, when, cmd in entries],
                      headers=["file", "what", "machine, date", "command that regenerates it"], tablefmt="github"),
             ""]
    path = reports / "README.md"
    path.write_text("\n".join(lines))
    return path


def characterization_entries(reports: Path) -> list[tuple[str, str, str, str]]:
    folder = reports / "characterization"
    table = folder / "log_r_quantiles.md"
    if not table.is_file():
        return []
    text = table.read_text()
    machine = next((l.removeprefix("- Machine: ") for l in text.splitlines() if l.startswith("- Machine: ")), "?")
    date = next((l.removeprefix("- Date: ") for l in text.splitlines() if l.startswith("- Date: ")), "?")
    command = next((l.removeprefix("- Command: ").strip("`") for l in text.splitlines()
                    if l.startswith("- Command: ")), "python -m rramk.characterize")
    out = []
    for f in sorted(folder.iterdir()):
        what = {"log_r_quantiles.md": "ln(R/R0) quantiles at fixed pulse counts, per configuration",
                "d2d_parameters.png": "D2D parameters drawn against their truncated densities",
                "cycling_comparison.png": "median and 10-90% band, each imperfection off alone"}.get(
            f.name, f"resistance against cumulative pulses: {f.stem.removeprefix('cycling_').replace('_', ' ')}")
        out.append((f"characterization/{f.name}", what, f"{machine}, {date}", command))
    return out


def other_entries(reports: Path) -> list[tuple[str, str, str, str]]:
    """Hand-kept notes and raw results (listed with the command that produced their numbers)."""
    out = []
    notes = reports / "perf-notes.md"
    if notes.is_file():
        out.append(("perf-notes.md", "performance experiments: prediction, change, measurement", "see each entry",
                    "commands in each entry"))
    for path in sorted((reports / "bench").glob("*.json")):
        session = json.loads(path.read_text()).get("session", {})
        out.append((f"bench/{path.name}", "raw pytest-benchmark results",
                    f"{session.get('machine', '?')}, {session.get('date', '?')}",
                    session.get("command", "pytest bench --benchmark-only")))
    for path in sorted((reports / "gpu").glob("*")) if (reports / "gpu").is_dir() else []:
        out.append((f"gpu/{path.name}", "GPU check: kernel tests and timings", "see file", "bash bench/gpu_check.sh"))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rramk.report", description=__doc__.split("\n")[0])
    p.add_argument("--reports", type=Path, default=Path("reports"), help="the reports directory (default reports)")
    args = p.parse_args(argv)
    reports = args.reports
    if not reports.is_dir():
        print(f"python -m rramk.report: error: --reports {reports} is not a directory", file=sys.stderr)
        return 2
    entries = []
    records = load_benchmarks(reports / "bench")
    if records:
        sessions = sorted({(r["file"], r["session"].get("machine", "?"), r["session"].get("date", "?")) for r in records})
        speed = reports / "speed.md"
        speed.write_text("# Speed of rramk against its alternatives\n\nFrom the raw results in bench/ "
                         f"(`pytest bench --benchmark-only`); this file: `{REPORT_COMMAND}`. Ratios compare runs of "
                         "one session on one machine.\n\n" + speed_tables(records) + "\n")
        when = "; ".join(f"{m}, {d}" for _, m, d in sessions)
        entries.append(("speed.md", "speed tables with ratios against each alternative", when, REPORT_COMMAND))
        if plot_update_scaling(records, reports / "speed_update.png"):
            entries.append(("speed_update.png", "device update: time against size", when, REPORT_COMMAND))
    for (dataset, budget), study in sorted(load_summaries(reports / "ablation" / "summaries").items()):
        files = write_ablation(dataset, budget, study, reports)
        runs = [s for v in study.values() for s in v]
        when = f"{runs[0]['machine'].get('gpu') or runs[0]['machine'].get('cpu')}, " \
               f"{min(s['date'] for s in runs)} to {max(s['date'] for s in runs)}"
        for f in files:
            what = "training curves per imperfection" if f.stem.endswith("_curves") else "accuracy per imperfection"
            entries.append((f.name, f"{what}, {dataset} {budget} ({len(runs)} runs)", when,
                            f"{ablation_command(dataset, runs[0])} && {REPORT_COMMAND}"))
    entries += characterization_entries(reports)
    entries += other_entries(reports)
    index = write_index(reports, entries)
    print(f"wrote {len(entries)} entries to {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
