"""What every command line of rramk shares: its process set-up, usage errors and argument parser.

Importing this module imports neither torch nor Triton, so that a command can prepare its
process before they load.
"""

from __future__ import annotations

import argparse
import os


# torch's, oneDNN's and MKL's AVX2 code on every x86 CPU that has AVX2: the same bits on AVX2-only and
# AVX-512 machines, at no measured cost (reports/perf-notes.md, bench/time_code_paths.py).
PINNED_CODE_PATH = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
CODE_PATH_ENV = "RRAMK_CODE_PATH"
"""``pinned`` (default): PINNED_CODE_PATH where the CPU has AVX2; ``default``: torch's own choice."""


def prepare_process() -> None:
    """Set, before torch loads (a library must not change the environment, a command may):

    * passive OpenMP waiting: spinning threads make two rramk processes on one machine 2-4x slower
      than their share (reports/perf-notes.md);
    * the pinned CPU code path (``pin_code_path``).

    A variable the user set wins."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    pin_code_path()


def pin_code_path(environ=os.environ) -> dict[str, str]:
    """Put PINNED_CODE_PATH into ``environ`` where the CPU has AVX2 (x86), unless RRAMK_CODE_PATH=default
    or the variable is set already; returns what it set. torch, oneDNN and MKL read these variables
    when first used, so this must run before the first tensor operation."""
    from rramk.kernels.cpu_flags import cpu_features

    choice = environ.get(CODE_PATH_ENV, "pinned")
    if choice not in ("pinned", "default"):
        raise UsageError(f"{CODE_PATH_ENV}: expected pinned or default, got {choice!r}")
    if choice == "default" or "avx2" not in cpu_features():
        return {}
    added = {name: value for name, value in PINNED_CODE_PATH.items() if name not in environ}
    environ.update(added)
    return added


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
