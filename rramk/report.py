"""Tables and figures in reports/ from saved results: ``python -m rramk.report``.

Inputs (all committed under reports/): ``bench/*.json`` (``pytest bench --benchmark-only``),
``ablation/summaries/<dataset>/<budget>/<config>/seed<k>/summary.json`` (the finished runs of
``python -m rramk.ablation``, of every shard that has finished) and ``characterization/``
(``python -m rramk.characterize``, indexed only). It writes the speed tables
(rramk.speed_report), each ablation study's table, verdict and figures (rramk.ablation_report),
and ``reports/README.md``, the index, which says for every file the machine, the date and the
command that regenerates it. The same inputs give the same files (dates and machines come from
the inputs, not from the clock).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tabulate import tabulate

# rramk.report's names from before its reports moved to their own modules stay importable from here
from .ablation_report import (CURVE_STYLE, ablation_command, load_summaries, plot_ablation,  # noqa: F401
                              plot_learning_curves, write_ablation, write_ablation_reports)
from .ablation_statistics import (ablation_rows, identical_to_none, imperfection_costs, interaction,  # noqa: F401
                                  learning_curves, verdict)
from .report_files import PNG_METADATA, REPORT_COMMAND  # noqa: F401
from .speed_report import DERIVED, load_benchmarks, plot_update_scaling, speed_tables, write_speed_report  # noqa: F401


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
    entries = write_speed_report(reports)
    entries += write_ablation_reports(reports)
    entries += characterization_entries(reports)
    entries += other_entries(reports)
    index = write_index(reports, entries)
    print(f"wrote {len(entries)} entries to {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
