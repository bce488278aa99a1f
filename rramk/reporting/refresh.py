"""The refresh answer and report: each refresh policy's runs (reports/refresh/*/) against the same runs without
refresh.

:func:`refresh_sentence` is the index's answer to "does refresh help?": the final accuracies of
:func:`refresh_results`, else a pointer to reports/refresh.md, else "pending". :func:`write_refresh_report` writes
reports/refresh.md (per policy and setting: accuracy with and without refresh, the gain with Welch's test, the
best pulse rate without refresh, the endurance the runs record, accuracy per epoch) and reports/refresh.png from
the runs alone.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from tabulate import tabulate

from rramk.reporting.files import PNG_METADATA, REPORT_COMMAND, pyplot
from rramk.reporting.refresh_runs import (REFRESH_MATCH, best_curve_label, best_rate_without, load_runs, pair_runs,
                                         policy_of, epoch_records, refresh_key, section_curves, sections_of, setting_words)
from rramk.reporting.runs import dates, machine_names, machines, pct
from rramk.studies.statistics import reported_accuracy, selection_rule
from rramk.studies.welch import welch
from rramk.training.run_settings import PUBLISHED

def refresh_results(reports: Path) -> list[dict]:
    """Each refresh policy measured in reports/refresh/*/summary.json at its largest budget, against the
    runs without refresh of the same settings and seeds (there, or among the ablation summaries):
    [{"policy", "with", "without", "seeds", "setting"}], accuracies as means over the shared seeds."""
    runs = load_runs(reports)
    results = []
    for name, budgets in sorted(pair_runs(runs).items()):
        budget, pairs = max(budgets.items())
        first = pairs[0][0][1]
        results.append({"policy": name, "with": sum(reported_accuracy(w[1]) for w, _ in pairs) / len(pairs),
                        "without": sum(reported_accuracy(o[1]) for _, o in pairs) / len(pairs), "seeds": len(pairs),
                        "lr": first["settings"]["lr_pulses"],
                        "best_without": best_rate_without([s for _, s in runs], first),
                        "setting": f"{setting_words(first)}, lr_pulses {first['settings']['lr_pulses']:g}"})
    return results


def refresh_sentence(reports: Path) -> str:
    """Does refresh help? The refresh runs' accuracy against the same runs without refresh, and against the
    best pulse rate without refresh where other rates ran; else a pointer to reports/refresh.md; else pending."""
    path = reports / "refresh.md"
    link = " ([refresh.md](refresh.md))" if path.is_file() else ""
    results = refresh_results(reports)
    if results:
        gains = [r["with"] - r["without"] for r in results]
        word = "Yes" if all(g > 0 for g in gains) else ("No" if all(g <= 0 for g in gains) else "It depends on "
                                                                                                  "the policy")
        seeds = sorted({r["seeds"] for r in results})
        parts = "; ".join(f"on {setting}: " + ", ".join(
            f"refresh {r['policy']} ends at {100 * r['with']:.2f} % against {100 * r['without']:.2f} % without "
            f"({100 * (r['with'] - r['without']):+.2f} points)" for r in results if r["setting"] == setting)
            for setting in dict.fromkeys(r["setting"] for r in results))
        caveat = (" — one seed per cell: no error bar yet, run more seeds before quoting a gain to a tenth of a "
                  "point" if seeds == [1] else f" ({'/'.join(map(str, seeds))} seeds per cell)")
        best = [(r, r["best_without"]) for r in results if r["best_without"] and r["best_without"][0] != r["lr"]]
        against = "".join(f" The runs of {r['policy']} are at lr_pulses {r['lr']:g}; without refresh the same device reaches "
                          f"{100 * b[1]:.2f} % at lr_pulses {b[0]:g} ({b[2]} seeds), so refresh {r['policy']} is "
                          f"{100 * (r['with'] - b[1]):+.2f} points from the best rate without it."
                          for r, b in best[:1])
        hidden = sorted({r["policy"].partition(":")[0] for r in results} - {"pulses"})
        observed = (f" The conditions {', '.join(hidden)} read each device's true t*, which a chip cannot observe "
                    "(`pulses`, a count a chip keeps, does not)" if hidden else "")
        return (f"**Does refresh help?** {word}, on the runs measured so far: {parts}{caveat}.{against}"
                f"{observed}{link}.")
    if path.is_file():
        return "**Does refresh help?** See [refresh.md](refresh.md) (no refresh runs with a baseline to read)."
    return ("**Does refresh help?** Pending: no refresh study has been reported yet (reports/refresh.md does "
            "not exist).")
# ----------------------------------------------------------------------------- reports/refresh.md and .png

INTRO = ("Weak-RESET pulses only raise a device's resistance, so every device drifts past its t* into the slow "
         "regime (slope m2 << m1) and its synapse stops learning. A refresh re-programs such a synapse as a chip "
         "would: SET both devices back to low resistance (a new cycle) and write the weight it held again by "
         "program and verify. It is an extension of MODEL.md (section 3 names it; the authors' code has it "
         "commented out), off by default (`python -m rramk.train --refresh CONDITION`).")
POLICIES = {"past_t_star": "SET a synapse as soon as either device has t >= its t*",
            "window": "SET a synapse when both devices are past (1 - margin) t* (default margin 0)",
            "pulses": "SET a synapse when either device has had `limit` pulses since its last SET (a count a chip "
                      "can keep)"}
CAVEAT = ("Caveat: the past_t_star and window conditions read each device's true t* (not observable by a chip; "
          "pulses reads a pulse count, which a chip can keep), and every refresh "
          "run uses the lr_pulses of its baseline (not tuned with refresh).")
KEPT = "<!-- hand-written notes below: kept verbatim by python -m rramk.report, not computed from the runs -->"
ENDURANCE = (("pulses_per_device", "RESET pulses/device since last SET"),
             ("fraction_past_t_star", "devices past t* (%)"),
             ("sets_per_device", "SETs/device (mean over devices)"),
             ("max_sets_per_device", "SETs on the worst device"),
             ("reset_pulses_per_device", "RESET pulses/device in all"),
             ("failed_rewrites", "failed re-writes (cumulative)"),
             ("sign_flips_per_synapse", "sign flips/synapse (last epoch)"))
"""The endurance read from the last metrics record of each run (rramk.optim.WeakResetAdam.device_statistics)."""
NOT_RECORDED = ("the energy and the duration of a SET or of a re-write (no time or energy model of the pulses); "
                "the number of write pulses each re-write took (only whether it failed); the distribution of SET "
                "counts over devices beyond its mean and its maximum; the number of devices, so failed re-writes "
                "are counts, not a share of the SETs; how many SETs a real cell survives (the model has no "
                "endurance limit); any cycle-to-cycle data (a SET draws c1 and R0 from the device-to-device "
                "distributions)")


def _mean_se(values: list[float]) -> tuple[float, float, float]:
    """Mean, standard deviation and standard error over seeds (nan spread with one seed)."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return mean, std, std / math.sqrt(len(values))


def _test_cell(test: dict) -> str:
    """'+1.91 ± 0.63 (95 % interval, p = 0.0021)', ', not resolved' where the interval holds 0."""
    if math.isnan(test["half_width"]):
        return f"{100 * test['value']:+.2f} ({'no spread' if test['se'] == 0 else 'one seed'}: no test)"
    return (f"{100 * test['value']:+.2f} ± {100 * test['half_width']:.2f} (p = {test['p']:.2g})"
            + ("" if abs(test["value"]) > test["half_width"] else ", not resolved"))


def _gain(with_acc: list[float], without_acc: list[float]) -> dict:
    a, b = _mean_se(with_acc), _mean_se(without_acc)
    return welch([(a[0], a[1], len(with_acc)), (b[0], b[1], len(without_acc))], [1, -1])


def _rerun(summary: dict) -> str:
    """The run's recorded command, with what today's defaults need to make the same run again: ``--validation 0``
    where the run had no validation split and the data set's default now holds some out, ``--lr-pulses`` where
    the run's rate is not the default (not for the learning-rate study, whose command names every rate)."""
    command = summary["command"]
    published = PUBLISHED.get(summary["dataset"], {})
    if not summary.get("validation") and published.get("validation") and "--validation" not in command:
        command += " --validation 0"
    lr = summary.get("settings", {}).get("lr_pulses")
    if lr is not None and lr != published.get("lr_pulses", lr) and "--lr-pulses" not in command \
            and "--study lr" not in command:
        command += f" --lr-pulses {lr:g}"
    return command


def _accuracy_table(section: dict) -> str:
    rows = []
    best = [reported_accuracy(s) for _, s in section["best"]]
    for policy, pairs in section["policies"].items():
        with_acc = [reported_accuracy(w[1]) for w, _ in pairs]
        without_acc = [reported_accuracy(o[1]) for _, o in pairs]
        (m, _, se), (m0, _, se0) = _mean_se(with_acc), _mean_se(without_acc)
        if section["best_lr"] is None:
            best_cells = ["no runs at other rates", ""]
        else:
            b = _mean_se(best)
            best_cells = [f"{pct(b[0], b[2])} at lr_pulses {section['best_lr']:g} ({len(best)} seeds)",
                          _test_cell(_gain(with_acc, best))]
        rows.append([policy, " ".join(str(w[1]["seed"]) for w, _ in pairs),
                     " / ".join(f"{100 * a:.2f}" for a in with_acc), pct(m, se),
                     " / ".join(f"{100 * a:.2f}" for a in without_acc), pct(m0, se0),
                     _test_cell(_gain(with_acc, without_acc)), *best_cells])
    return tabulate(rows, headers=["refresh", "seeds", "with refresh (%) per seed", "with refresh (%), mean ± s.e.",
                                   "without (%) per seed", "without (%), mean ± s.e.",
                                   "gain (points), Welch 95 %", "best rate without refresh (%)",
                                   "refresh - best rate (points), Welch 95 %"],
                    tablefmt="github", disable_numparse=True)


def _endurance_value(key: str, values: list[float]) -> str:
    if key == "max_sets_per_device":
        return f"{max(values):.0f} (per seed: {' / '.join(f'{v:.0f}' for v in values)})"
    if key == "failed_rewrites":
        return f"{statistics.fmean(values):.0f} (per seed: {' / '.join(f'{v:.0f}' for v in values)})"
    scale, digits = (100, 1) if key == "fraction_past_t_star" else (1, 0 if "pulses" in key else 2)
    mean, _, se = _mean_se(values)
    return f"{scale * mean:.{digits}f}" + ("" if math.isnan(se) else f" ± {scale * se:.{digits}f}")


def _endurance_table(section: dict) -> tuple[str, list[str]]:
    """The endurance of each condition from the last record of each run; the keys that no run records."""
    groups = [("off", [o for o in section["off"]])] + [(p, [w for w, _ in pairs])
                                                       for p, pairs in section["policies"].items()]
    rows, missing = [], set()
    for name, runs in groups:
        last = [epoch_records(d, s)[-1] for d, s in runs]
        row = [name, str(len(runs))]
        for key, _ in ENDURANCE:
            if all(key in r for r in last):
                row.append(_endurance_value(key, [r[key] for r in last]))
            elif name == "off" and key in ("sets_per_device", "max_sets_per_device", "failed_rewrites"):
                row.append("none (refresh off: no SET)")
            elif name == "off" and key == "reset_pulses_per_device" and all("pulses_per_device" in r for r in last):
                row.append(_endurance_value("pulses_per_device", [r["pulses_per_device"] for r in last]) + " *")
            else:
                row.append("not recorded")
                missing.add(key)
        seconds = [r["seconds"] for d, s in runs for r in epoch_records(d, s) if "seconds" in r]
        row.append(f"{statistics.median(seconds):.0f}" if seconds else "not recorded")
        rows.append(row)
    table = tabulate(rows, headers=["refresh", "runs", *(label for _, label in ENDURANCE), "s/epoch (median)"],
                     tablefmt="github", disable_numparse=True)
    return table, [label for key, label in ENDURANCE if key in missing]


def _epoch_table(curves: dict[str, dict]) -> str:
    epochs = sorted({e for c in curves.values() for e in c["epoch"]})
    rows = [[str(e), *(f"{100 * c['mean'][c['epoch'].index(e)]:.2f}" if e in c["epoch"] else ""
                       for c in curves.values())] for e in epochs]
    return tabulate(rows, headers=["epoch", *(f"{name} (n={c['seeds']}): test acc (%)" for name, c in curves.items())],
                    tablefmt="github", disable_numparse=True)


CURVE_COLORS = {"off": "k", "past_t_star": "tab:red", "window": "tab:blue"}


def plot_refresh(sections: list[dict], path: Path) -> None:
    """Test accuracy per epoch, without refresh and with each policy (mean over seeds, band: min-max), one panel
    per setting; the caveat under the panels."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(sections), figsize=(6.4 * len(sections), 4.6), dpi=150, squeeze=False)
    others = iter(("tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:olive", "tab:cyan"))
    colors = dict(CURVE_COLORS)
    for ax, section in zip(axes[0], sections):
        for name, c in section_curves(section).items():
            best = name == best_curve_label(section)
            color = "0.55" if best else colors.setdefault(name, next(others, "0.5"))
            label = ("without refresh" if name == "off" else
                     f"without refresh, lr_pulses {section['best_lr']:g} (best rate)" if best else name)
            ax.plot(c["epoch"], [100 * v for v in c["mean"]], color=color, lw=1.8 if name == "off" else 1.4,
                    ls="--" if name == "off" else (":" if best else "-"), label=f"{label} (n={c['seeds']})")
            if c["seeds"] > 1:
                ax.fill_between(c["epoch"], [100 * v for v in c["min"]], [100 * v for v in c["max"]], color=color,
                                alpha=0.15, lw=0)
        first = section["first"]
        ax.set_title(f"{setting_words(first)}, lr_pulses {first['settings']['lr_pulses']:g}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("test accuracy (%)\nmean over seeds, band: min-max")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Refresh: test accuracy per epoch with and without")
    fig.text(0.5, 0.01, CAVEAT, ha="center", va="bottom", fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, metadata=PNG_METADATA)
    plt.close(fig)


def _kept_notes(path: Path) -> list[str]:
    """The hand-written notes of an existing refresh.md (design, tests: no numbers of the runs), kept verbatim:
    what follows the KEPT marker, or in a file written by hand, its sections from ``## Design`` on."""
    if not path.is_file():
        return []
    text = path.read_text()
    if KEPT in text:
        tail = text.split(KEPT, 1)[1].strip("\n")
    elif "\n## Design" in text:
        tail = text[text.index("\n## Design") + 1:].strip("\n")
    else:
        return []
    return ["", KEPT, tail]


def _off_checks(runs: list[tuple[Path, dict]], used: set[Path]) -> list[str]:
    """Runs of reports/refresh/ that no table uses, and for each run without refresh there, whether its epochs
    equal those of a committed run of the same settings but the epochs (every key but the seconds)."""
    lines = []
    for d, s in runs:
        if d.parent.name != "refresh" or d in used:
            continue
        line = f"`{d.name}` ({policy_of(s)}, {setting_words(s)}, seed {s['seed']}): no run to compare it with in the tables"
        epochs = REFRESH_MATCH.index("epochs")
        key = tuple(v for i, v in enumerate(refresh_key(s)) if i != epochs)
        mine = epoch_records(d, s)
        for d2, s2 in runs:
            if d2 == d or policy_of(s2) != "off" or tuple(v for i, v in enumerate(refresh_key(s2)) if i != epochs) \
                    != key or s2["epochs"] <= s["epochs"]:
                continue
            theirs = epoch_records(d2, s2)[:len(mine)]
            same = all({k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
                       for a, b in zip(mine, theirs)) and len(theirs) == len(mine)
            line += (f"; its {len(mine)} epochs {'equal' if same else 'DIFFER from'} the first {len(mine)} of "
                     f"`{d2.relative_to(d.parent.parent)}` in every recorded metric but the seconds")
            break
        lines.append(f"  - {line}.")
    return lines


METHOD_ACCURACY = (
    "Accuracies: the reported test accuracy of each run, mean ± standard error over seeds; gain = mean with "
    "refresh - mean without, ± the half-width of the 95 % interval of Welch's t-test over seeds (the "
    "seeds as independent samples; the pairing by seed is not used) and its two-sided p; a gain whose "
    "interval holds 0 is not resolved. Best rate without refresh: the lr_pulses of the highest mean "
    "reported accuracy among the runs without refresh at other rates (chosen on the test accuracy: "
    "optimistic for the baseline).\n")
METHOD_ENDURANCE = (
    "Endurance: the last record of each run's metrics.jsonl (the summary's history where a run has "
    "none), mean ± standard error over seeds; `RESET pulses/device since last SET` is "
    "`pulses_per_device` (t, reset by a SET); `RESET pulses/device in all` is `reset_pulses_per_device` "
    "(before and since the SETs, the re-write pulses included), and for the runs without refresh (*) "
    "their `pulses_per_device`, which without a SET counts every RESET pulse; SETs are per device (both "
    "devices of a synapse are SET together, so per synapse too); `SETs on the worst device` is "
    "`max_sets_per_device`, the largest over seeds; `failed re-writes`: SETs after which the pair did "
    "not read the weight held within the write-pulse bound (a count over the whole network, mean over "
    "seeds); s/epoch: median over the epochs of the runs, on a machine shared with other jobs (not "
    "comparable between runs).\n")


def policy_words(policy: str) -> str:
    """What a policy does, by its condition (its options, e.g. limit=542,retries=3, are in its name)."""
    return POLICIES.get(policy.partition(":")[0], "see rramk.device.refresh")


def _refresh_header(sections: list[dict], summaries: list[dict], reruns: list[str], png: str) -> list[str]:
    """The title, the policies, the machine, the dates, the commands that made the runs and their reruns."""
    commands = list(dict.fromkeys(s["command"] for s in summaries))
    lines = ["# Refresh: SET the synapses that can no longer move\n", INTRO, "",
             "Policies: " + "; ".join(f"`{p}`: {policy_words(p)}"
                                      for p in dict.fromkeys(p for sec in sections for p in sec["policies"])) + ".\n",
             f"- Machine: {machines(summaries)}",
             f"- Dates of the runs: {dates(summaries)}",
             "- Commands that made the runs (each run's summary.json, `command`):",
             *(f"  - `{c}`" for c in commands)]
    if reruns != commands:
        lines += ["- The same commands for today's defaults (`--validation 0` where a run had no validation split, "
                  "`--lr-pulses` where its rate is not today's default; the index's command column):",
                  *(f"  - `{c}`" for c in reruns)]
    return lines + [f"- Reported accuracy: {selection_rule(summaries)}",
                    "- Runs read: `reports/refresh/<run>/` (refresh runs, and runs without refresh there) and "
                    "`reports/ablation/summaries/<dataset>/<budget>/<config>/seed<k>/` (runs without refresh); a "
                    "refresh run's baseline is the run without refresh of the same settings and seed "
                    f"({', '.join(REFRESH_MATCH)}).",
                    f"- This file and [{png}]({png}): `{REPORT_COMMAND}`",
                    f"- {CAVEAT}\n"]


def _section_lines(section: dict) -> list[str]:
    """One setting's tables: accuracy and gains, endurance, accuracy per epoch."""
    first = section["first"]
    endurance, missing = _endurance_table(section)
    lines = [f"## {setting_words(first)}, lr_pulses {first['settings']['lr_pulses']:g}\n",
             _accuracy_table(section), "", endurance, ""]
    if missing:
        lines.append(f"Not recorded by some of these runs: {', '.join(missing)}.\n")
    mismatched = [d.name for d, s in [*section["off"], *(w for p in section["policies"].values() for w, _ in p)]
                  if epoch_records(d, s) and epoch_records(d, s)[-1]["test_accuracy"] != s["final_test_accuracy"]]
    lines += ["Test accuracy per epoch (mean over seeds):\n", _epoch_table(section_curves(section)), ""]
    if mismatched:
        lines.append(f"The last record of {', '.join(mismatched)} differs from its summary's final accuracy.\n")
    return lines


def write_refresh_report(reports: Path) -> list[tuple[str, str, str, str]]:
    """reports/refresh.md and refresh.png from the refresh runs (reports/refresh/*/) and their baselines without
    refresh (there or among the ablation summaries); their rows of the index ([] and nothing written without a
    refresh run that has a baseline). Hand-written notes of the file (design, tests) are kept below its tables."""
    runs = load_runs(reports)
    sections = sections_of(runs)
    if not sections:
        return []
    used = [r for sec in sections for r in [*sec["off"], *(w for pairs in sec["policies"].values() for w, _ in pairs)]]
    best_runs = [s for sec in sections for _, s in sec["best"]]
    summaries = [s for _, s in used] + best_runs
    md, png = reports / "refresh.md", reports / "refresh.png"
    kept = _kept_notes(md)
    reruns = list(dict.fromkeys(_rerun(s) for s in summaries))
    lines = _refresh_header(sections, summaries, reruns, png.name)
    unused = _off_checks(runs, {d for d, _ in used})
    if unused:
        lines += ["Runs under reports/refresh/ not in the tables:", *unused, ""]
    lines += [METHOD_ACCURACY, METHOD_ENDURANCE, f"Not recorded by these runs: {NOT_RECORDED}.\n"]
    for section in sections:
        lines += _section_lines(section)
    lines += [f"Figure: [{png.name}]({png.name}), test accuracy per epoch without refresh and with each policy "
              "(and without refresh at the best other pulse rate, where there is one; mean over seeds, band: "
              "min-max).", "", CAVEAT]
    md.write_text("\n".join(lines + kept) + "\n")
    plot_refresh(sections, png)
    count = f"{len({id(s) for s in summaries})} runs"
    when = f"{machine_names(summaries)}, {dates(summaries)}"
    # the chained reruns run past a thousand characters: the index names them, refresh.md lists them
    command = f"the {len(reruns)} run commands listed in {md.name}, then `{REPORT_COMMAND}`"
    return [(md.name, f"refresh: accuracy with and without, gain (Welch), endurance, per-epoch accuracy ({count})",
             when, command),
            (png.name, f"refresh: test accuracy per epoch with and without ({count})", when, command)]
