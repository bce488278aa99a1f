"""What every study's report says about its runs: the machines (fingerprint), dates, seeds per cell, the
budget, and percentages with their standard errors."""

from __future__ import annotations

import math

def all_runs(runs: dict) -> list[dict]:
    return [s for v in runs.values() for s in v]


def machine_name(machine: dict) -> str:
    """The GPU, else the CPU with what decides a run's bits where recorded (rramk.provenance.fingerprint)."""
    if machine.get("gpu"):
        return machine["gpu"]
    threads = machine.get("threads")
    name = machine.get("cpu")
    if machine.get("cpu_id"):
        name += f" ({machine['cpu_id']}, torch vector code {machine.get('cpu_capability')})"
    else:
        name += " (CPU generation not recorded)"
    return name + (f", {threads} torch threads" if threads else " (torch threads not recorded)")


def machine_names(runs: list[dict]) -> str:
    return "; ".join(sorted({machine_name(s["machine"]) for s in runs}))


def machines(runs: list[dict]) -> str:
    return f"{machine_names(runs)}; torch {runs[0]['machine']['torch']}"


def dates(runs: list[dict]) -> str:
    return f"{min(s['date'] for s in runs)} to {max(s['date'] for s in runs)}"


def code_versions(runs: list[dict]) -> str:
    """Which code made the runs: 'rramk 0.2.0 at commit 1a2b3c4d (12 runs)', one entry per version (a table
    that mixes versions says so), 'not recorded' for summaries from before 2026-12-07."""
    counts: dict[str, int] = {}
    for s in runs:
        code = s.get("code")
        if not code:
            key = "not recorded"
        else:
            key = f"rramk {code['version']}" + (f" at commit {code['commit'][:8]}" if code.get("commit") else "") + (
                " with local changes" if code.get("modified") else "")
        counts[key] = counts.get(key, 0) + 1
    return "; ".join(f"{key} ({n} runs)" for key, n in sorted(counts.items()))


def per_cell(runs: dict) -> str:
    """How many seeds each cell (configuration) has: ``3 seeds per cell``, ``1 to 3 seeds per cell``."""
    counts = sorted({len(v) for v in runs.values()})
    return (f"{counts[0]} seeds" if len(counts) == 1 else f"{counts[0]} to {counts[-1]} seeds") + " per cell"


def seeds_of(runs: dict) -> tuple[list[int], str]:
    """The seeds of the study, and a sentence on how many each cell has."""
    seeds = sorted({s["seed"] for v in runs.values() for s in v})
    return seeds, f"{per_cell(runs)} (seeds {', '.join(map(str, seeds))}; the seeds column of each table)"


def budget_words(summary: dict) -> str:
    """The budget of a run in words; the pulse rate only for a device run (the software BNN has none)."""
    limit, held_out = summary["settings"].get("limit_train"), summary.get("validation")
    examples = f"{'all' if not limit else limit} training examples" + (
        f" (the last {held_out} of the training set held out for validation)" if held_out else "")
    rate = "" if summary["settings"].get("imperfections") == "ideal" else \
        f", lr_pulses {summary['settings']['lr_pulses']:g}"
    return f"{summary['epochs']} epochs, {examples}{rate}"


def pct(value: float, se: float = float("nan"), signed: bool = False) -> str:
    if math.isnan(value):
        return ""
    text = f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"
    return text + ("" if math.isnan(se) else f" ± {100 * se:.2f}")
