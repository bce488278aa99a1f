"""What every generated file of reports/ shares: the command that regenerates it, and figures whose
bytes depend only on their inputs (no version string in the PNG, no display needed)."""

from __future__ import annotations

from pathlib import Path

REPORT_COMMAND = "python -m rramk.report"
PNG_METADATA = {"Software": None}  # no version string: identical inputs give identical bytes


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def remove_stale(reports: Path, written: set[str]) -> list[Path]:
    """Delete the study reports (``ablation_*.md``/``.png``, which only this command writes) that this run
    did not write: their runs were retired or moved, so they would describe runs that are not there."""
    stale = [p for p in sorted(reports.glob("ablation_*")) if p.suffix in (".md", ".png") and p.name not in written]
    for path in stale:
        path.unlink()
    return stale
