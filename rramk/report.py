"""Tables and figures in reports/ from saved results: ``python -m rramk.report``.

Reads (all committed under reports/) ``bench/*.json``, ``ablation/summaries/.../summary.json`` and
``characterization/``, and writes the speed tables (``rramk.reporting.speed``), each study's report
(``rramk.reporting.ablation``, ``sweeps``), the per-technology comparison (``technologies``), the refresh
report (``rramk.reporting.refresh``) and
``reports/README.md``, the index with the three answers
(``rramk.reporting.index``; the refresh answer: ``rramk.reporting.refresh``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rramk.reporting.index import characterization_entries, other_entries, write_ablation_reports, write_index
from rramk.reporting.files import remove_stale
from rramk.reporting.refresh import write_refresh_report
from rramk.reporting.speed import write_speed_report
from rramk.reporting.technologies import write_technologies


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rramk.report", description=__doc__.split("\n")[0])
    p.add_argument("--reports", type=Path, default=Path("reports"), help="the reports directory (default reports)")
    args = p.parse_args(argv)
    reports = args.reports
    if not reports.is_dir():
        print(f"python -m rramk.report: error: --reports {reports} is not a directory", file=sys.stderr)
        return 2
    entries = write_speed_report(reports)
    ablation_entries, answers = write_ablation_reports(reports)
    entries += ablation_entries
    entries += write_technologies(reports, answers["published"])
    refresh_entries = write_refresh_report(reports)
    entries += refresh_entries
    entries += characterization_entries(reports)
    entries += other_entries(reports, written={name for name, *_ in refresh_entries})
    index = write_index(reports, entries, answers)
    print(f"wrote {len(entries)} entries to {index}")
    for stale in remove_stale(reports, {name for name, *_ in entries}):
        print(f"removed {stale}: its runs are no longer under reports/ablation/summaries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
