"""One task's share of a list of runs: ``--shard i/n``, or the task's place in a Slurm job array.

Shards count from 0: ``--shard 0/4`` to ``--shard 3/4`` split a list among four tasks, shard i
taking items i, i+n, i+2n, ... (round-robin, so that cheap and costly runs mix). Every item is in
exactly one shard; a shard is empty when n exceeds the number of items. Without ``--shard``, a task
of a Slurm job array is shard (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP
of SLURM_ARRAY_TASK_COUNT (or of (MAX - MIN) / STEP + 1), so ``sbatch --array=0-3`` or ``1-4`` or
``0-6:2`` each give the four shards; an array with gaps (``--array=1,3,7``) is refused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from rramk.cli import UsageError

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (from 0) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if type(self.count) is not int or self.count < 1:
            raise UsageError(f"shard: expected a count of shards >= 1, got {self.count!r}")
        if type(self.index) is not int or not 0 <= self.index < self.count:
            raise UsageError(f"shard: expected an index in 0..{self.count - 1} (shards count from 0), "
                             f"got {self.index!r}")

    def select(self, items: Sequence[T]) -> list[T]:
        """This shard's items: items[index], items[index + count], ..."""
        return list(items[self.index::self.count])

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"i/n"`` -> Shard(i, n), with 0 <= i < n."""
    index, sep, count = text.partition("/")
    try:
        if not sep:
            raise ValueError
        index, count = int(index), int(count)
    except ValueError:
        raise UsageError(f"--shard: expected i/n, the shard i (counted from 0) of n, e.g. 0/4; got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise UsageError(f"--shard: expected i/n with 0 <= i < n (shards count from 0: 0/{max(count, 1)} to "
                         f"{max(count, 1) - 1}/{max(count, 1)}); got {text!r}")
    return Shard(index, count)


def _slurm_int(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{name}: expected an integer, got {value!r}") from None


def shard_from_environment(environ: Mapping[str, str] = os.environ) -> Shard | None:
    """This task's shard in a Slurm job array, or None outside one (no SLURM_ARRAY_TASK_ID)."""
    task = _slurm_int(environ, "SLURM_ARRAY_TASK_ID")
    if task is None:
        return None
    low = _slurm_int(environ, "SLURM_ARRAY_TASK_MIN") or 0
    high = _slurm_int(environ, "SLURM_ARRAY_TASK_MAX")
    step = _slurm_int(environ, "SLURM_ARRAY_TASK_STEP") or 1
    count = _slurm_int(environ, "SLURM_ARRAY_TASK_COUNT")
    spanned = None if high is None else (high - low) // step + 1  # tasks from MIN to MAX by STEP
    if count is None and spanned is None:
        raise UsageError("SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX "
                         "is: pass --shard i/n")
    count = spanned if count is None else count
    index, off_step = divmod(task - low, step)
    if off_step or count < 1 or not 0 <= index < count or spanned not in (None, count):
        raise UsageError(f"SLURM_ARRAY_TASK_ID={task} is not one of {count} evenly spaced tasks from "
                         f"SLURM_ARRAY_TASK_MIN={low} by SLURM_ARRAY_TASK_STEP={step} (an array with gaps, such as "
                         "--array=1,3,7?): pass --shard i/n")
    return Shard(index, count)
