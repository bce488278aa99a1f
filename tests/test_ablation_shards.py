"""python -m rramk.ablation --shard and Slurm job arrays: every run of the study once across the shards,
the machine-fingerprint warning, and bad shards refused (training replaced by a stand-in)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import rramk.ablation as ablation
import rramk.studies.runner as runner
import rramk.training.loop as loop
from rramk import provenance
from rramk.studies.configs import ABLATIONS, STUDIES, label_of
from tests.test_ablation import STUDY
from tests.test_ablation import _outside_a_job_array  # noqa: F401  (autouse: no Slurm job array)
from tests.test_train import _one_thread_no_network  # noqa: F401  (autouse: one thread, no downloads)


PLAN = [(label_of(c.slug), seed) for seed in (0, 1) for c in STUDIES["published"].configs.values()]  # STUDY's runs


@pytest.fixture
def stand_in_training(monkeypatch) -> list[tuple[str, int]]:
    """Replaces training by writing a summary; returns the (label, seed) of every run trained."""
    trained = []

    def fake_train(settings):
        out = Path(settings.out)
        trained.append((label_of(out.parent.name), settings.seed))
        assert ABLATIONS[trained[-1][0]].flag == settings.imperfections
        out.mkdir(parents=True, exist_ok=True)
        summary = {"imperfections": settings.imperfections, "seed": settings.seed, "final_test_accuracy": 0.5}
        (out / loop.SUMMARY).write_text(json.dumps(summary))
        return summary

    monkeypatch.setattr(runner, "train", fake_train)
    return trained


def _finished(root: Path) -> set[tuple[str, int]]:
    return {(label_of(p.parents[1].name), int(p.parent.name.removeprefix("seed")))
            for p in root.glob("mnist/*/*/seed*/summary.json")}


def test_a_study_warns_when_its_finished_runs_used_another_machine_fingerprint(tmp_path, stand_in_training, capsys):
    """A CPU run's bits depend on the machine fingerprint (threads, torch's vector code, ...): finishing a
    study on another one than its finished runs recorded (here or in their committed copies) says so,
    with the thread count to set; the same fingerprint, an unrecorded field (older summaries) or a GPU
    run says nothing."""
    runs, summaries = tmp_path / "runs", tmp_path / "summaries"
    first_shard = [*STUDY, "--out", str(runs), "--summaries", str(summaries), "--shard", "0/2"]
    assert ablation.main(first_shard) == 0
    assert "fingerprint" not in capsys.readouterr().err  # stand-in summaries record no machine
    finished = sorted(summaries.glob("mnist/*/*/seed*/summary.json"))
    threads, cpu = torch.get_num_threads(), provenance.machine()["cpu"]
    for path, machine in zip(finished, [{"cpu": cpu, "threads": threads}, {"cpu": cpu},
                                        {"cpu": "c", "gpu": "H200", "threads": threads + 5}]):
        path.write_text(json.dumps({**json.loads(path.read_text()), "machine": machine}))
    assert ablation.main([*STUDY, "--out", str(runs), "--summaries", str(summaries), "--shard", "1/2"]) == 0
    assert "fingerprint" not in capsys.readouterr().err
    path = finished[3]  # a committed copy only: the run directory's own summary says nothing
    path.write_text(json.dumps({**json.loads(path.read_text()), "machine": {"cpu": cpu, "threads": threads + 1}}))
    assert ablation.main([*STUDY, "--out", str(runs), "--summaries", str(summaries), "--shard", "1/2"]) == 0
    err = capsys.readouterr().err
    assert f"another machine fingerprint (threads {threads + 1}, here {threads})" in err
    assert f"OMP_NUM_THREADS={threads + 1}" in err
    here = provenance.machine()
    path.write_text(json.dumps({**json.loads(path.read_text()), "machine": {**here, "cpu_capability": "SVE256"}}))
    assert ablation.main([*STUDY, "--out", str(runs), "--summaries", str(summaries), "--shard", "1/2"]) == 0
    err = capsys.readouterr().err
    assert f"cpu_capability 'SVE256', here {here['cpu_capability']!r}" in err and "OMP_NUM_THREADS" not in err


@pytest.mark.parametrize("count", [1, 2, 3, 28, 30])
def test_shards_run_every_run_of_the_study_once(tmp_path, stand_in_training, count):
    runs, summaries = tmp_path / "runs", tmp_path / "summaries"
    for index in range(count):
        before, trained_before = _finished(runs), len(stand_in_training)
        assert ablation.main([*STUDY, "--out", str(runs), "--summaries", str(summaries),
                              "--shard", f"{index}/{count}"]) == 0
        own = PLAN[index::count]
        assert stand_in_training[trained_before:] == own, f"shard {index}/{count}"
        assert _finished(runs) - before == set(own), f"shard {index}/{count} wrote other runs' directories"
        assert _finished(summaries) == _finished(runs)
    assert sorted(stand_in_training) == sorted(PLAN) and len(stand_in_training) == len(PLAN)


def test_a_slurm_array_task_runs_its_shard_and_shard_wins(tmp_path, stand_in_training, monkeypatch, capsys):
    for name, value in (("ID", "5"), ("MIN", "4"), ("MAX", "7"), ("COUNT", "4"), ("STEP", "1")):
        monkeypatch.setenv(f"SLURM_ARRAY_TASK_{name}", value)  # sbatch --array=4-7: this is task 1 of 4
    argv = [*STUDY, "--out", str(tmp_path / "runs"), "--summaries", str(tmp_path / "summaries")]
    assert ablation.main(argv) == 0
    assert stand_in_training == PLAN[1::4]
    assert "shard 1/4 (7 of 28 runs)" in capsys.readouterr().out
    del stand_in_training[:]
    assert ablation.main([*argv, "--shard", "0/2"]) == 0
    assert stand_in_training == PLAN[0::2]


@pytest.mark.parametrize("shard", ["4/4", "-1/4", "1/0", "1", "a/b", "1/2/3"])
def test_refuses_a_bad_shard(shard, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ablation.main(["mnist", f"--shard={shard}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m rramk.ablation: error: argument --shard: expected i/n") and repr(shard) in err


def test_refuses_slurm_variables_it_cannot_read(tmp_path, stand_in_training, monkeypatch, capsys):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")  # --array=1,3,7: not evenly spaced
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MAX", "7")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    assert ablation.main([*STUDY, "--out", str(tmp_path / "runs"), "--summaries", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "python -m rramk.ablation: error: SLURM_ARRAY_TASK_ID=3 is not one of 3" in err and "--shard i/n" in err
    assert stand_in_training == []
