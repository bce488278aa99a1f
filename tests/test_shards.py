"""rramk.studies.shards: ``--shard i/n`` and Slurm job arrays split a list of runs, every run in exactly one shard."""

from collections import Counter

import pytest

from rramk.studies.configs import ABLATIONS
from rramk.cli import UsageError
from rramk.studies.shards import Shard, parse_shard, shard_from_environment

RUNS = [(label, seed) for seed in (0, 1, 2) for label in ABLATIONS]  # the full study: 33 runs


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 11, 32, 33, 34, 100])
def test_shards_partition_the_runs(count):
    shards = [Shard(i, count).select(RUNS) for i in range(count)]
    assert Counter(run for shard in shards for run in shard) == Counter(RUNS), f"{count} shards"
    assert max(map(len, shards)) - min(map(len, shards)) <= 1, f"{count} shards: unbalanced"
    for i, shard in enumerate(shards):
        assert shard == [RUNS[k] for k in range(i, len(RUNS), count)], f"shard {i}/{count}"
    assert sum(not shard for shard in shards) == max(count - len(RUNS), 0)


@pytest.mark.parametrize("text, shard", [("0/1", Shard(0, 1)), ("0/4", Shard(0, 4)), ("3/4", Shard(3, 4)),
                                         ("40/41", Shard(40, 41))])
def test_parse_shard(text, shard):
    assert parse_shard(text) == shard and str(shard) == text


@pytest.mark.parametrize("text", ["4/4", "-1/4", "1/0", "0/0", "0/-2", "1", "", "/", "a/4", "1/b", "1/2/3", "1.0/2"])
def test_parse_shard_refuses_bad_values(text):
    with pytest.raises(UsageError, match="^--shard: expected i/n") as error:
        parse_shard(text)
    assert str(error.value).endswith(f"got {text!r}")


@pytest.mark.parametrize("index, count", [(4, 4), (-1, 4), (0, 0), (True, 2), (0, 2.0)])
def test_shard_refuses_bad_values(index, count):
    with pytest.raises(UsageError, match="^shard: expected"):
        Shard(index, count)


def _slurm(**variables) -> dict[str, str]:
    return {f"SLURM_ARRAY_TASK_{k.upper()}": str(v) for k, v in variables.items()}


def test_outside_a_job_array_there_is_no_shard():
    assert shard_from_environment({}) is None
    assert shard_from_environment({"SLURM_JOB_ID": "77", "SLURM_ARRAY_TASK_COUNT": "4"}) is None


@pytest.mark.parametrize("array, ids, variables", [
    ("0-3", [0, 1, 2, 3], dict(min=0, max=3, count=4, step=1)),
    ("1-4", [1, 2, 3, 4], dict(min=1, max=4, count=4, step=1)),
    ("0-6:2", [0, 2, 4, 6], dict(min=0, max=6, count=4, step=2)),
    ("0-40", list(range(41)), dict(min=0, max=40, count=41, step=1)),
    ("0-3, COUNT only", [0, 1, 2, 3], dict(count=4)),
    ("3-6, MIN and MAX only", [3, 4, 5, 6], dict(min=3, max=6)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_a_job_array_is_sharded_by_its_slurm_variables(array, ids, variables):
    shards = [shard_from_environment(_slurm(id=task, **variables)) for task in ids]
    assert shards == [Shard(i, len(ids)) for i in range(len(ids))], f"--array={array}"
    assert Counter(run for s in shards for run in s.select(RUNS)) == Counter(RUNS)


@pytest.mark.parametrize("variables, message", [
    (dict(id=2), "neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX"),
    (dict(id="x", count=4), "SLURM_ARRAY_TASK_ID: expected an integer, got 'x'"),
    (dict(id=1, count="four"), "SLURM_ARRAY_TASK_COUNT: expected an integer, got 'four'"),
    (dict(id=3, min=1, max=7, count=3), "is not one of 3 evenly spaced tasks"),  # --array=1,3,7
    (dict(id=1, min=0, max=6, step=2, count=4), "is not one of 4 evenly spaced tasks"),
    (dict(id=4, count=4), "is not one of 4 evenly spaced tasks"),
    (dict(id=0, min=1, max=4, count=4), "is not one of 4 evenly spaced tasks"),
])
def test_bad_slurm_variables_are_refused(variables, message):
    with pytest.raises(UsageError) as error:
        shard_from_environment(_slurm(**variables))
    assert message in str(error.value)
