"""What every command line of rramk shares: its process set-up, usage errors and argument parser.

Importing this module imports neither torch nor Triton, so that a command can prepare its
process before they load.
"""

from __future__ import annotations

import argparse
import os


def prepare_process() -> None:
    """Passive OpenMP waiting, set before torch loads (a library must not change the environment, a
    command may): spinning threads make two rramk processes on one machine 2-4x slower than their
    share (reports/perf-notes.md). An explicit OMP_WAIT_POLICY wins."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def say(line: str, file=None) -> None:
    """Print one line in one write: under torchrun every rank shares the terminal or pipe, and
    print() writes the text and its newline separately when Python is unbuffered
    (PYTHONUNBUFFERED, common in CI), so two ranks' lines could interleave mid-line. One write of
    a short line to a pipe is atomic (POSIX, under PIPE_BUF bytes)."""
    import sys
    stream = sys.stdout if file is None else file
    stream.write(line + "\n")
    stream.flush()


class UsageError(Exception):
    """A bad argument: the command prints its one-line message and exits with status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")
