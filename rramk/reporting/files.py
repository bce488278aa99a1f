"""What every generated file of reports/ shares: the command that regenerates it, and figures whose
bytes depend only on their inputs (no version string in the PNG, no display needed)."""

from __future__ import annotations

REPORT_COMMAND = "python -m rramk.report"
PNG_METADATA = {"Software": None}  # no version string: identical inputs give identical bytes


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
