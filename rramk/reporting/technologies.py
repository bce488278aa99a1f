"""technologies_<dataset>_<budget>.md: the published ablation of each memory technology side by side.

A study run with ``--preset`` lives under ``<budget>-preset-<stem>-<hash>``; the published fit's under
``<budget>``. Where a budget has the published ablation of two or more technologies (the published HfOx fit
and any preset, e.g. ``reram_sb_gong2018.json``, ``ecram_tang2018.json``), one table gives, per technology,
each imperfection's cost in both views (Welch's 95 % interval, "not resolved" where it holds 0) and which
imperfection costs the most, read from the same answers as each technology's own report (its runs at one
pulse rate, lr_pulses 8: the HfOx study's ``_lr8`` variant).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from tabulate import tabulate

from rramk.reporting.files import REPORT_COMMAND

PRESET = re.compile(r"^(?P<base>.+)-preset-(?P<stem>.+)-(?P<hash>[0-9a-f]{8})$")


def technology_of(budget: str) -> tuple[str, str]:
    """(the budget without its preset, the technology: the preset's stem, or 'hfox_ted2021' for none)."""
    match = PRESET.match(budget)
    return (match["base"], match["stem"]) if match else (budget, "hfox_ted2021")


def _cell(c: dict, view: str) -> str:
    value, half = c[view], c.get(f"{view}_ci", math.nan)
    if math.isnan(value):
        return "not in this device"
    text = f"{100 * value:+.2f}" + ("" if math.isnan(half) else f" ± {100 * half:.2f}")
    return text if not math.isnan(half) and abs(value) > half else text + ", not resolved"


def _costliest(costs: list[dict], view: str) -> str:
    measured = [c for c in costs if not math.isnan(c[view])]
    if not measured:
        return "n/a"
    worst = max(measured, key=lambda c: c[view])
    half = worst.get(f"{view}_ci", math.nan)
    resolved = not math.isnan(half) and worst[view] > half
    return f"{worst['imperfection']}" + ("" if resolved else " (not resolved)")


def write_technologies(reports: Path, published_answers: list[dict]) -> list[tuple[str, str, str, str]]:
    """The cross-technology tables (module docstring); their rows of the index."""
    groups: dict[tuple[str, str], dict[str, dict]] = {}
    for a in published_answers:
        if a.get("variant") not in ("", "_lr8"):
            continue
        base, technology = technology_of(a["budget"])
        groups.setdefault((a["dataset"], base), {})[technology] = a
    entries = []
    for (dataset, base), found in sorted(groups.items()):
        if len(found) < 2:
            continue
        rows = []
        for technology, a in sorted(found.items(), key=lambda kv: (kv[0] != "hfox_ted2021", kv[0])):
            costs = {c["imperfection"]: c for c in a["costs"]}
            rows.append([technology, ", ".join(str(s) for s in a.get("seeds", [])) or "?",
                         *(_cell(costs[x], view) for view in ("added", "removed") for x in ("d2d", "pink", "rtn")),
                         _costliest(a["costs"], "added"), _costliest(a["costs"], "removed"), f"[{a['file']}]({a['file']})"])
        name = f"technologies_{dataset}_{base}.md"
        lines = [f"# Which imperfection costs the most, per memory technology: {dataset}, {base}\n",
                 "Each technology's published ablation (MODEL.md section 4's framing on its own device: the mean "
                 "model, each imperfection added to it alone and removed alone from the full model), at lr_pulses 8. "
                 "Costs in accuracy points, ± the half-width of Welch's 95 % interval over seeds; 'not resolved' where "
                 "the interval holds 0; 'not in this device' where the technology's preset has no such imperfection "
                 "(the aihwkit presets have no RTN). Technologies: hfox_ted2021 (the published HfOx fit), and the "
                 "presets of rramk/device/presets/ (their files say where each number comes from).\n",
                 f"- This file: `{REPORT_COMMAND}`; the runs: each technology's report (last column)\n",
                 tabulate(rows, headers=["technology", "seeds per cell", *(f"{x} {view}" for view in ("added", "removed")
                                                                           for x in ("d2d", "pink", "rtn")),
                                         "costliest (added)", "costliest (removed)", "report"],
                          tablefmt="github", disable_numparse=True), ""]
        (reports / name).write_text("\n".join(lines))
        entries.append((name, f"the published ablation per memory technology, {dataset} {base} "
                        f"({', '.join(sorted(found))})", "the technologies' reports'", REPORT_COMMAND))
    return entries
