"""python -m rramk.train: what a run writes, and a data-parallel run against one process.

The metrics and the summary agree with the checkpoint; a summary is written whole or not at all;
a line is one write (ranks share a pipe). The data-parallel tests start two processes with
torchrun (marked slow) and compare their checkpoints with a one-process run's. Tiny runs and
helpers as in tests/test_train.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import rramk
import rramk.training.loop as loop
from tests.test_train import _one_thread_no_network  # noqa: F401  (autouse: one thread, no downloads)
from tests.test_train import (
    DATA_ROOT,
    REPO_ROOT,
    assert_same,
    checkpoint,
    child_env,
    device_states,
    metrics,
    needs_mnist,
    run,
    strip_times,
    updates_at_start,
)


# ----------------------------------------------------------------------------- 1. metrics content


@needs_mnist
def test_metrics_and_summary_agree_with_the_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    assert run(run_dir, "--epochs", "1") == 0
    first = checkpoint(run_dir)
    assert run(run_dir, "--epochs", "2", "--resume") == 0
    second = checkpoint(run_dir)
    lines = metrics(run_dir)
    assert [m["epoch"] for m in lines] == [1, 2]
    summary = json.loads((run_dir / loop.SUMMARY).read_text())
    # the threads the run used: a CPU run's bits depend on them (torch's batch norm splits its sums by thread)
    assert summary["machine"]["threads"] == torch.get_num_threads() == 1
    assert summary["history"] == lines == second["history"]
    assert summary["final_test_accuracy"] == lines[-1]["test_accuracy"]
    assert summary["best_test_accuracy"] == max(m["test_accuracy"] for m in lines)
    assert summary["train_seconds"] == pytest.approx(sum(m["seconds"] for m in lines))

    for record, saved in zip(lines, (first, second)):
        assert record["lr"] == [8.0, 8e-3]  # pulse rate (decays every 7 epochs), float rate
        assert 0 < record["train_accuracy"] <= 1 and 0.1 < record["test_accuracy"] <= 1
        assert record["train_loss"] > 0 and record["test_loss"] > 0 and record["seconds"] > 0
        assert 0 <= record["fraction_past_t_star"] <= 1
        # pulses per device: the mean pulse count over every device of the saved arrays
        counts = torch.cat([s["pulses_done"].reshape(-1).to(torch.float64) for s in device_states(saved)])
        assert counts.numel() == 2 * (784 * 32 + 32 * 10)
        assert record["pulses_per_device"] > 0
        assert record["pulses_per_device"] == pytest.approx(counts.mean().item(), rel=1e-12)
        # past t_star: the devices' own t_star, from arrays rebuilt out of the checkpoint
        past = 0
        for state in device_states(saved):
            array = rramk.DeviceArray.from_state_dict(state, backend="reference")
            assert torch.equal(torch.stack(array.pulse_counts()).reshape(2, -1), state["pulses_done"].reshape(2, -1))
            past += int((torch.stack(array.pulse_counts()) >= array.d2d_parameters()["t_star"]).sum())
        assert record["fraction_past_t_star"] == pytest.approx(past / counts.numel(), rel=1e-12)

    # sign flips of epoch 2: at least the synapses whose weight differs between the two
    # checkpoints, and of the same parity (a synapse that flipped an odd number of times differs)
    synapses = 784 * 32 + 32 * 10
    flips = round(lines[1]["sign_flips_per_synapse"] * synapses)
    assert flips == pytest.approx(lines[1]["sign_flips_per_synapse"] * synapses, abs=1e-6)
    differ = sum(int((first["model"][k] != second["model"][k]).sum()) for k in ("fc1.weight", "fc2.weight"))
    assert differ > 0 and flips >= differ and (flips - differ) % 2 == 0


# ----------------------------------------------------------------------------- 2. data parallel


DDP_ARGS = ["--hidden", "32", "--limit-train", "450", "--batch-size", "100", "--epochs", "1", "--backend",
            "reference", "--device", "cpu", "--no-progress", "--data-dir", str(DATA_ROOT)]
# 450 examples: the last batch (50) is short, and splits into 25 + 25

EVERY_RANK_SAVES = textwrap.dedent("""
    # Every rank writes its own checkpoint (its own --out): rank 0's and rank 1's states compared.
    import os, sys
    import rramk.training.distributed
    import rramk.train as train
    rramk.training.distributed.Distributed.main = property(lambda self: True)
    sys.exit(train.main(sys.argv[1:] + ["--out", os.path.join(os.environ["OUT_BASE"], "rank" + os.environ["RANK"])]))
""")


def torchrun(args: list[str], tmp_path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    # unbuffered, as CI runs it: the ranks' lines then reach the shared pipe as they are written
    env = dict(env or child_env(), PYTHONUNBUFFERED="1")
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_a_line_is_one_write(monkeypatch):
    """Ranks sharing one pipe cannot split each other's lines: a line and its newline leave in
    one write (print() makes two when Python is unbuffered; the CI log once read
    '..., 0.2 smnist all: ...')."""
    from rramk import cli

    class Stream:
        def __init__(self):
            self.writes = []

        def write(self, text):
            self.writes.append(text)

        def flush(self):
            self.writes.append(None)

    out, err = Stream(), Stream()
    monkeypatch.setattr(sys, "stdout", out)
    cli.say("epoch 1/1: train acc 0.5000")
    cli.say("python -m rramk.train: error: bad", file=err)
    assert out.writes == ["epoch 1/1: train acc 0.5000\n", None]
    assert err.writes == ["python -m rramk.train: error: bad\n", None]


@needs_mnist
@pytest.mark.slow
def test_data_parallel_matches_one_process(tmp_path):
    pytest.importorskip("torch.distributed")
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    ddp_out = tmp_path / "ddp"
    done = torchrun(["-m", "rramk.train", "mnist", *DDP_ARGS, "--out", str(ddp_out)], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    # both ranks end with the same test accuracy (each prints its own summary line)
    finals = re.findall(r"^mnist all: test accuracy (\S+) at", done.stdout, re.MULTILINE)
    assert len(finals) == 2 and finals[0] == finals[1], done.stdout
    summary = json.loads((ddp_out / loop.SUMMARY).read_text())
    assert summary["processes"] == 2

    single_out = tmp_path / "single"
    assert run(single_out, tiny=DDP_ARGS) == 0
    ddp, single = checkpoint(ddp_out), checkpoint(single_out)
    (d,), (s,) = metrics(ddp_out), metrics(single_out)

    # the devices: the same pulses nearly everywhere (the all-reduced gradient differs from the
    # one-process gradient by float rounding, which can move a pulse count across a rounding
    # boundary); the same number of updates (the short last batch was split, not dropped)
    for a, b, start in zip(device_states(ddp), device_states(single), updates_at_start(dataset="mnist", hidden=32)):
        assert a["updates"] == b["updates"] == start + 5
        same = (a["pulses_done"] == b["pulses_done"]).double().mean().item()
        assert same >= 0.995, same
    assert abs(d["test_accuracy"] - s["test_accuracy"]) <= 0.02
    assert d["pulses_per_device"] == pytest.approx(s["pulses_per_device"], rel=1e-3)
    # the train metrics cover the global batch, not rank 0's half
    assert abs(d["train_accuracy"] - s["train_accuracy"]) <= 0.01
    assert d["train_loss"] == pytest.approx(s["train_loss"], rel=1e-3)
    # global batch norm: running statistics over the global batch, and the float parameters'
    # gradients equal to one process's (their Adam moments; a gradient off by a constant
    # factor shows here as exp_avg * c and exp_avg_sq * c**2, though Adam's steps hide it)
    for name in ("bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var",
                 "bn1.weight", "bn1.bias", "bn2.weight", "bn2.bias"):
        assert torch.allclose(ddp["model"][name], single["model"][name], rtol=1e-3, atol=1e-5), name
    float_states = [k for k in single["optimizer"]["state"] if "device" not in single["optimizer"]["state"][k]]
    assert len(float_states) == 4
    for k in float_states:
        a, b = ddp["optimizer"]["state"][k], single["optimizer"]["state"][k]
        assert a["step"] == b["step"] == 5
        for moment in ("exp_avg", "exp_avg_sq"):
            scale = b[moment].abs().max()
            assert torch.allclose(a[moment], b[moment], rtol=1e-3, atol=1e-4 * scale.item()), (k, moment)

    # rank 0 and rank 1 hold identical states, bit for bit (each rank saves, through a wrapper)
    script = tmp_path / "every_rank_saves.py"
    script.write_text(EVERY_RANK_SAVES)
    env = dict(child_env(), OUT_BASE=str(tmp_path / "ranks"))
    done = torchrun([str(script), "mnist", *DDP_ARGS], tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    rank0, rank1 = checkpoint(tmp_path / "ranks" / "rank0"), checkpoint(tmp_path / "ranks" / "rank1")
    for key in ("model", "optimizer", "scheduler", "epoch", "batch"):
        assert_same(rank0[key], rank1[key], key)
    assert_same(strip_times(metrics(tmp_path / "ranks" / "rank0")), strip_times(metrics(tmp_path / "ranks" / "rank1")))
    # and the same computation as the plain CLI run
    assert_same(rank0["model"], ddp["model"], "model")
    assert_same(device_states(rank0), device_states(ddp), "devices")


@needs_mnist
@pytest.mark.slow
def test_data_parallel_refuses_a_last_batch_that_does_not_split(tmp_path):
    args = [a if a != "450" else "451" for a in DDP_ARGS]
    done = torchrun(["-m", "rramk.train", "mnist", *args, "--out", str(tmp_path / "ddp")], tmp_path)
    assert done.returncode != 0
    assert "--limit-train: the last batch of each epoch (51 of 451 examples) does not split over 2 processes" \
        in done.stderr
    assert not (tmp_path / "ddp" / loop.CHECKPOINT).exists()


# ----------------------------------------------------------------------------- 3. summaries


def test_summaries_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """A summary a writer dies in the middle of keeps its old content, and a finished one leaves no
    temporary: a study's other shard read a half-written summary.json once and stopped
    (json.decoder.JSONDecodeError in warn_other_machines)."""
    from pathlib import Path

    from rramk.training.loop import atomic_write_text

    target = tmp_path / "summary.json"
    atomic_write_text(target, '{"old": 1}')
    real = Path.write_text

    def dies_halfway(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", dies_halfway)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, '{"new": 2, "padding": "' + "x" * 100 + '"}')
    monkeypatch.setattr(Path, "write_text", real)
    assert json.loads(target.read_text()) == {"old": 1}
    atomic_write_text(target, '{"new": 2}')
    assert json.loads(target.read_text()) == {"new": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary left, also after the failure
