"""``reports/README.md``, the index: every file with its machine, date and command, led by the three
answers (which imperfection hurts most, what tolerance is enough, does refresh help) and the command
that runs or finishes each full study; and the ablation reports of every study found
(:func:`write_ablation_reports`). The same inputs give the same files (dates and machines come from
the inputs, not from the clock).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

from tabulate import tabulate

from rramk.reporting.ablation import write_ablation
from rramk.reporting.files import REPORT_COMMAND
from rramk.reporting.refresh import refresh_sentence
from rramk.reporting.runs import all_runs, dates, machine_names, per_cell
from rramk.reporting.sweeps import interval_words, lrs_found, sweeps_found, write_lr, write_sensitivity
from rramk.studies.configs import STUDIES, lr_study
from rramk.studies.statistics import choose_lr
from rramk.studies.summaries import UNSUFFIXED_LR, ablation_command, directory_of, load_summaries, study_runs

ANSWER_CONFIGS = ("ideal", "mean model", "mean + d2d", "mean + pink", "mean + rtn", "full model", "full but d2d",
                  "full but pink", "full but rtn")
SEEDS = (0, 1, 2, 3, 4)
FULL_STUDIES = (
    ("the answers: the published ablation (ideal, mean model, + each of d2d/pink/rtn, full model - each) at "
     "lr_pulses 8 and 100, 20 epochs, validation split", "scripts/study-mnist-answers.sh", "published", {},
     ("mnist", "epochs20-val10000"), ANSWER_CONFIGS, (8.0, 100.0)),
    *((f"tolerance of the {knob} spread, alone on the mean model, lr_pulses 8", "scripts/study-mnist-tolerances.sh",
       "sensitivity", {"knob": knob}, ("mnist", "epochs20-val10000"), None, (8.0,))
      for knob in ("d2d", "d2d_r", "d2d_m1", "d2d_t_star", "d2d_m2")),
    ("tolerance of the mismatch of a synapse's two devices (d2d_pair), on the full model, lr_pulses 8",
     "KNOBS=d2d_pair scripts/study-mnist-tolerances.sh", "sensitivity", {"knob": "d2d_pair"},
     ("mnist", "epochs20-val10000"), None, (8.0,)),
    ("Fashion-MNIST published ablation, MLP", "python -m rramk.ablation fashion-mnist --full --seeds 0 1 2 3 4",
     "published", {}, ("fashion-mnist", "epochs20-val10000"), ANSWER_CONFIGS, (8.0,)),
    ("Fashion-MNIST published ablation, binary CNN (VGG at width 1/8)",
     "python -m rramk.ablation fashion-mnist --full --network vgg --width 0.125 --seeds 0 1 2 3 4", "published", {},
     ("fashion-mnist", "epochs20-val10000-vgg0.125"), ANSWER_CONFIGS, (8.0,)),
)
"""The full studies (20 epochs, every training example but the validation split, SEEDS): what, the command,
the study, its options, where its runs are (data set, budget directory), its configurations (None: all of the
study's) and its pulse rates."""
REFRESH_STUDY = ("refresh: the full model at lr_pulses 8 with refresh past_t_star, window and pulses:limit=542 "
                 "(each retries=3), 20 epochs, validation split", "scripts/study-mnist-refresh.sh", "val-lr8-", 15)
"""The refresh study: what, its command, the prefix of its runs under reports/refresh/, its runs (3 policies x
5 seeds, as the script writes them)."""


def _cost(c: dict, key: str) -> str:
    value, half = c[key], c.get(f"{key}_ci", math.nan)
    return "n/a" if math.isnan(value) else f"{100 * value:+.2f}" + ("" if math.isnan(half) else f" ± {100 * half:.2f}")


def _sweep_seeds_per_cell(a: dict) -> str:
    """Seeds per cell of a sweep's answer: '3', or '1-3' while it is partial."""
    counts = sorted({p["seeds"] for p in a.get("points", [])}) or [len(a["seeds"])]
    return f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


def _knob_tolerances(a: dict) -> str:
    """One knob's tolerances in a few words: 'pink (1/f amplitude alpha (ln R)) 0.53 / 0.81 (3 seeds, [file])'."""
    words = []
    for t in a["tolerances"].values():
        at = t["tolerance"]
        words.append(f"{at['value']:.2f}" if at["kind"] == "interpolated" else
                     f"beyond {at['value']:g}" if at["kind"] == "beyond" else "below the smallest factor swept")
    return f"{a['knob']} ({a['unit']}) {' / '.join(words)} ({_sweep_seeds_per_cell(a)} seeds per cell, [{a['file']}]({a['file']}))"


def _published_answer(a: dict, short: bool = False) -> str:
    """The published study's answer in a sentence: the verdict, then the costs with their intervals."""
    costs = ", ".join(f"{c['imperfection']} {_cost(c, 'added')} / {_cost(c, 'removed')}" for c in a["costs"])
    plain = next((l.removeprefix("- ") for l in a["verdict"] if "Is d2d the most damaging?" in l), "")
    seeds = f"{a['seeds'][0]}" if len(a["seeds"]) == 1 else f"{a['seeds'][0]} to {a['seeds'][-1]}"
    seeds += " seed" if seeds == "1" else " seeds"
    where = f"[{a['file']}]({a['file']})"
    if short:
        return f"{plain.split(':')[0].removeprefix('**Is d2d the most damaging? ').rstrip('*')} ({costs}; {where})."
    return (f"{plain} Costs in accuracy points, added alone to the mean model / removed alone from the full model "
            f"(± the half-width of Welch's 95 % interval, {seeds} per cell): {costs} ({a['dataset']}, "
            f"{a['budget']}{', ' + a['note'] if a.get('note') else ''}: {where}).")


def _is_full(budget: str) -> bool:
    """The published budget: 20 epochs on every training example (a validation split or not)."""
    _, epochs, limit = _budget_rank(budget)
    return epochs == 20 and limit == math.inf


def _budget_sentence(studies: list[dict]) -> str:
    """How d2d's cost on the mean model changes with the training budget, over the budgets measured."""
    points = []
    for a in studies:
        d2d = next((c for c in a["costs"] if c["imperfection"] == "d2d"), None)
        if d2d is not None and not math.isnan(d2d["added"]):
            points.append((_budget_rank(a["budget"])[1:], a["budget"], _cost(d2d, "added")))
    if len(points) < 2:
        return ""
    points.sort()
    return ("How the answer changes with the budget: d2d added to the mean model costs " + "; ".join(
        f"{cost} points at {budget}" for _, budget, cost in points) + " (short budgets: indicative only; a "
        "negative cost raises accuracy: identical devices all start from a tie, MODEL.md section 2).")


def headline(answers: dict, reports: Path) -> list[str]:
    """Three sentences: which imperfection hurts most, what tolerance is enough, does refresh help."""
    lines = []
    published = sorted(answers.get("published") or [], key=lambda a: a.get("variant", "") not in ("", "_tuned"))
    if published:
        a = published[0]
        lines.append(f"1. **Which imperfection hurts most?** {_published_answer(a)}")
        fixed = [o for o in published if (o["dataset"], o["budget"]) == (a["dataset"], a["budget"]) and o is not a]
        if fixed:
            lines.append("   At the published fixed rates instead: " + " ".join(
                f"{o['note']}: {_published_answer(o, short=True)}" for o in fixed))
        budgets = _budget_sentence([o for o in published if o["dataset"] == a["dataset"]
                                    and o.get("variant", "") in ("", "_tuned")])
        if budgets:
            lines.append(f"   {budgets}")
    else:
        lines.append("1. **Which imperfection hurts most?** Pending: `python -m rramk.ablation mnist --full`.")
    sweeps = sorted(answers.get("sensitivity") or [], key=lambda a: a["knob"] != "d2d")
    spreads = "" if any(a["knob"].startswith("d2d") for a in sweeps) else (
        "For device-to-device variability: pending, the sweeps of its per-parameter knobs (d2d, d2d_r, d2d_m1, "
        "d2d_t_star, d2d_m2: `scripts/study-mnist-tolerances.sh`; the earlier d2d sweep was retired, its knob "
        "clamped draws at 0). ")
    if sweeps:
        a = sweeps[0]
        parts = []
        for tol, t in a["tolerances"].items():
            at, measure = t["tolerance"], t["measure"]
            if at["kind"] == "interpolated":
                interval = f"{interval_words(t['interval'])} of the factor; " if t.get("interval") else ""
                parts.append(f"within {100 * tol:.1f} point of the mean model up to {a['knob']} factor "
                             f"{at['value']:.2f} ({interval}{a['unit']} ≈ {measure['value']:.3g})")
            elif at["kind"] == "beyond":
                parts.append(f"within {100 * tol:.1f} point for every factor swept, up to {at['value']:g}")
            else:
                parts.append(f"beyond {100 * tol:.1f} point already at the smallest factor swept")
        if a.get("better"):
            parts.append(f"but {a['better']} of the factors swept train better than the mean model (its identical "
                         "devices start from a tie, which a small spread breaks)")
        short = "" if _is_full(a["budget"]) else (" — a short budget, indicative only; the full study: "
                                                  "`scripts/study-mnist-tolerances.sh`")
        cell_seeds = _sweep_seeds_per_cell(a)
        # knobs swept on the mean model only: a sweep on the full model (t_star) measures its loss against the
        # mean model with every other imperfection on, so "the largest factor within a tolerance" does not apply
        others = [_knob_tolerances(o) for o in sweeps[1:] if (o["dataset"], o["budget"]) == (a["dataset"], a["budget"])
                  and o.get("base") == a.get("base")]
        also = (" The other imperfections at the same budget, the largest factor of the published fit within "
                + " / ".join(f"{100 * tol:.1f}" for tol in a["tolerances"]) + " point: " + "; ".join(others) + "."
                if others else "")
        lines.append(f"2. **What tolerance is enough?** {spreads}The accuracy stays {'; '.join(parts)} (1 = the published "
                     f"fit; {a['dataset']}, {a['budget']}, {cell_seeds} seeds per cell{short}; "
                     f"[{a['file']}]({a['file']})).{also}")
    else:
        lines.append("2. **What tolerance is enough?** Pending: `python -m rramk.ablation mnist --full --study "
                     "sensitivity --knob d2d`.")
    lines.append(f"3. {refresh_sentence(reports)}")
    return lines


def study_status(reports: Path) -> list[list[str]]:
    """Per full study: what, its command, and how many of its runs have finished."""
    from rramk.studies.configs import study_by_name

    summaries = load_summaries(reports / "ablation" / "summaries")
    rows = []
    for what, command, name, options, budget, labels, lrs in FULL_STUDIES:
        directories = summaries.get(budget, {})
        study = study_by_name(name, **options)
        configs = [study.configs[label] for label in (labels or study.labels)]
        expected = {(c.slug, None if c.imperfections is None else lr, seed)  # the ideal BNN: one run for every rate
                    for c in configs for lr in lrs for seed in SEEDS}
        done = sum(1 for slug, lr, seed in expected
                   if any(s["seed"] == seed for s in directories.get(directory_of(slug, lr), [])))
        state = "complete" if done == len(expected) else ("not started" if not done else "partial")
        rows.append([what, f"`{command}`", f"{done} of {len(expected)} runs ({state})"])
    rows += technology_status(summaries)
    done = len(list((reports / "refresh").glob(f"{REFRESH_STUDY[2]}*/summary.json")))
    state = "complete" if done >= REFRESH_STUDY[3] else ("not started" if not done else "partial")
    rows.append([REFRESH_STUDY[0], f"`{REFRESH_STUDY[1]}`", f"{done} of {REFRESH_STUDY[3]} runs ({state})"])
    return rows


TECHNOLOGY_PRESETS = ("reram_sb_gong2018.json", "ecram_tang2018.json")
"""The shipped presets of other technologies that scripts/study-mnist-technologies.sh studies."""


def technology_status(summaries: dict) -> list[list[str]]:
    """The cross-technology study's rows of the full studies' table: per preset, its published ablation's runs
    (ANSWER_CONFIGS but those about an imperfection the preset lacks) at lr_pulses 8, seeds SEEDS."""
    from rramk.device.preset import PUBLISHED, load_preset
    from rramk.device.traces import file_sha256

    rows = []
    for name in TECHNOLOGY_PRESETS:
        path = PUBLISHED.with_name(name)
        device = load_preset(path)
        budget = ("mnist", f"epochs20-val10000-preset-{path.stem}-{file_sha256(path)[:8]}")
        directories = summaries.get(budget, {})
        configs = [STUDIES["published"].configs[label] for label in ANSWER_CONFIGS
                   if not any(label == f"{view} {x}" for view in ("mean +", "full but") for x in ("d2d", "pink", "rtn")
                              if not getattr(device, x))]
        expected = {(c.slug, None if c.imperfections is None else 8.0, seed) for c in configs for seed in SEEDS}
        done = sum(1 for slug, lr, seed in expected
                   if any(s["seed"] == seed for s in directories.get(directory_of(slug, lr), [])))
        state = "complete" if done == len(expected) else ("not started" if not done else "partial")
        rows.append([f"the published ablation on {path.stem} (another technology: technologies_mnist_epochs20-"
                     f"val10000.md), lr_pulses 8", "`scripts/study-mnist-technologies.sh`",
                     f"{done} of {len(expected)} runs ({state})"])
    return rows


def _code(command: str) -> str:
    """A command as code; a sentence that names commands (it holds code spans itself) as it is."""
    return command if "`" in command else f"`{command}`"


def write_index(reports: Path, entries: list[tuple[str, str, str, str]], answers: dict | None = None) -> Path:
    """reports/README.md: the three answers, the full studies' commands, then one row per file: file, what it
    is, machine and date, the command."""
    lines = ["# Reports\n",
             "Every file here is produced by a committed command. To regenerate the tables and figures from the "
             "saved results: `python -m rramk.report`.\n",
             "## What a device engineer asks first\n", *headline(answers or {}, reports), "",
             "## The full studies, one command each\n",
             "20 epochs, every training example but the last 10 000 (the validation split), seeds 0 to 4 (hours "
             "on a CPU each; resumable anywhere: run the same command again to continue, runs already committed "
             "and runs shared between studies are trained once; `--shard i/n` splits a study among tasks); then "
             "`python -m rramk.report`.\n",
             tabulate(study_status(reports), headers=["study", "command", "finished"], tablefmt="github"), "",
             "## Files\n",
             tabulate([[f"[{f}]({f})", what, when, _code(cmd)] for f, what, when, cmd in entries],
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


def other_entries(reports: Path, written: set[str] = frozenset()) -> list[tuple[str, str, str, str]]:
    """Hand-kept notes (reports/*.md and fit/*.md that rramk.report does not write; ``written``: the names it
    wrote this time, listed by their writers) and raw results (listed with the command that produced their
    numbers)."""
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
    generated = {"README.md", "speed.md", "perf-notes.md", *written}
    for path in sorted([*reports.glob("*.md"), *reports.glob("fit/*.md")]):
        name = str(path.relative_to(reports))
        if name in generated or name.startswith("ablation_"):
            continue
        heading = next((l.lstrip("# ").strip() for l in path.read_text().splitlines() if l.startswith("#")), name)
        out.append((name, heading, "see file", "commands in the file"))
    return out


def _budget_rank(budget: str) -> tuple:
    """Sort key of budgets: more epochs, then all examples before a limit, then a larger limit."""
    epochs = int(re.match(r"epochs(\d+)", budget).group(1)) if re.match(r"epochs(\d+)", budget) else 0
    limit = re.search(r"-n(\d+)", budget)
    # runs that choose their epoch on validation first: the answers' method
    return ("-val" in budget, epochs, math.inf if limit is None else int(limit.group(1)))


def published_variants(directories: dict, default: float) -> list[tuple[str, dict, str, dict | None]]:
    """The published study's reports of one budget: (file suffix, runs, the rate in words, {label: lr} or
    None). Runs at one rate: one report. Runs at several: one per rate (``_lr8``) and ``_tuned``, each
    configuration at the rate of its highest mean validation accuracy (``choose_lr``); the ideal BNN,
    which has no pulses, is the same runs in each."""
    published = STUDIES["published"]
    # a rate is a variant of the ablation where its ranked cells ran, not only the lr study's two configurations
    ranked = dataclasses.replace(published, configs={k: c for k, c in published.configs.items()
                                                     if c.imperfections is not None
                                                     and k not in (published.mean, published.full)})
    lrs = lrs_found(directories, ranked, default)
    if len(lrs) <= 1:  # at its one rate (the short study's directories carry -lr8)
        runs = study_runs(directories, published, lrs[0] if lrs else None, default)
        return [("", runs, "", None)] if "ideal" in runs else []
    by_lr = {lr: study_runs(directories, published, lr, default) for lr in lrs}
    variants = [(f"_lr{lr:g}", runs, f"every configuration at lr_pulses {lr:g}", None)
                for lr, runs in by_lr.items() if "ideal" in runs]
    chosen = choose_lr({lr: {k: v for k, v in runs.items() if k != "ideal"} for lr, runs in by_lr.items()})
    tuned = {}
    for label in published.labels:
        if label == "ideal" and "ideal" in by_lr[lrs[0]]:
            tuned[label] = by_lr[lrs[0]][label]
        elif label in chosen:
            tuned[label] = by_lr[chosen[label]][label]
    if "ideal" in tuned and chosen:
        rates = ", ".join(f"{lr:g}" for lr in lrs)
        variants.insert(0, ("_tuned", tuned, f"each configuration at the lr_pulses of its highest mean validation "
                                             f"accuracy among {rates}", chosen))
    return variants


def write_ablation_reports(reports: Path) -> tuple[list[tuple[str, str, str, str]], dict]:
    """The files of every study under ``reports``/ablation/summaries; their rows of the index and the
    answers the index leads with ({"published": ..., "sensitivity": [...], "lr": ...}, largest budget first)."""
    entries, answers = [], {"published": [], "sensitivity": [], "lr": []}
    for (dataset, budget), directories in sorted(load_summaries(reports / "ablation" / "summaries").items()):
        default = UNSUFFIXED_LR  # run directories: the rate whose directories carry no suffix
        for variant, published, note, chosen in published_variants(directories, default):
            runs = all_runs(published)
            flags = "" if not variant else "--lr-pulses " + " ".join(f"{lr:g}" for lr in sorted(
                {s["settings"]["lr_pulses"] for s in runs if s["imperfections"] != "ideal"}))
            files, said = write_ablation(dataset, budget, published, reports, variant=variant, note=note, lrs=chosen,
                                         flags=flags)
            command = ablation_command(dataset, runs[0], flags, seeds=sorted({s["seed"] for s in runs}))
            for f in files:
                what = "training curves per imperfection" if f.stem.endswith("_curves") else \
                    "accuracy per imperfection (published framing)"
                entries.append((f.name, f"{what}, {dataset} {budget}{', ' + note if note else ''} ({len(runs)} runs, "
                                f"{per_cell(published)})", f"{machine_names(runs)}, {dates(runs)}",
                                f"{command} && {REPORT_COMMAND}"))
            if said:
                answers["published"].append({"dataset": dataset, "budget": budget, "file": files[0].name,
                                             "variant": variant, "note": note, **said})
        files, said = write_lr(dataset, budget, directories, reports)
        if files:
            study = lr_study(())
            lrs = lrs_found(directories, study, default)
            by_lr = {lr: study_runs(directories, study, lr, default) for lr in lrs}
            runs = [s for r in by_lr.values() for s in all_runs(r)]
            flags = "--study lr --lr-pulses " + " ".join(f"{lr:g}" for lr in lrs)
            command = ablation_command(dataset, runs[0], flags, sorted({s["seed"] for s in runs}))
            for f in files:
                entries.append((f.name, f"accuracy against the pulse learning rate, {dataset} {budget} "
                                f"({len(runs)} runs)", f"{machine_names(runs)}, {dates(runs)}",
                                f"{command} && {REPORT_COMMAND}"))
            answers["lr"].append({"dataset": dataset, "budget": budget, "file": files[0].name, **said})
        for knob, base, lr, factors in sweeps_found(directories):
            files, said = write_sensitivity(dataset, budget, directories, knob, base, factors, reports, lr)
            for f in files:
                entries.append((f.name, f"accuracy against the {knob} knob, {dataset} {budget} ({said['runs']} runs)",
                                said["when"], f"{said['command']} && {REPORT_COMMAND}"))
            if files:
                answers["sensitivity"].append({"dataset": dataset, **said})
    for key in answers:
        answers[key].sort(key=lambda a: (a["dataset"] != "mnist", tuple(-x for x in _budget_rank(a["budget"]))))
    return entries, answers
