"""python -m rramk.train: resume bit for bit, Ctrl-C, refusals, bad arguments, NaN, outputs, data parallel.

Every run is tiny (784-32-10 MLP, a few hundred MNIST examples, batches of 100, 1-2 epochs, the
eager ``reference`` device backend so that nothing waits for torch.compile). Most runs call
``rramk.train.main`` in this process (cheap); the Ctrl-C and data-parallel tests start real
processes. MNIST is the real data set (the CLI verifies the official checksums, so it cannot be
faked); the tests that need it are skipped when it is absent. CIFAR-10 uses tiny batches in the
official format written here, with the checksum table pointed at them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import rramk.data as data
import rramk.optim
import rramk.train as train
import rramk.training.loop as loop
import rramk.training.run_settings as run_settings
from rramk import HfOxWeakReset
from rramk.device.preset import PUBLISHED
from rramk.device.traces import file_sha256
from rramk.train import main

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("RRAMK_DATA") or REPO_ROOT.parent / "shared" / "datasets")
HAVE_MNIST = all((DATA_ROOT / "mnist" / f"{name}.gz").is_file() or (DATA_ROOT / "mnist" / name).is_file()
                 for name in data.MNIST_FILES)
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason=f"real MNIST not found in {DATA_ROOT / 'mnist'}")
HAVE_FASHION_MNIST = all((DATA_ROOT / "fashion-mnist" / f"{name}.gz").is_file()
                         or (DATA_ROOT / "fashion-mnist" / name).is_file() for name in data.MNIST_FILES)

TINY = ["--hidden", "32", "--limit-train", "300", "--batch-size", "100", "--backend", "reference",
        "--device", "cpu", "--no-progress", "--data-dir", str(DATA_ROOT)]
BATCHES = 3  # 300 examples in batches of 100
NOT_COMPUTED = {"seconds"}  # wall-clock fields: the only ones a resumed run may change


@pytest.fixture(autouse=True)
def _one_thread_no_network(monkeypatch):
    """One thread (the machine is shared; it also keeps float reductions identical to the
    subprocesses, which run with OMP_NUM_THREADS=1) and no downloads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def no_network(url, *args, **kwargs):
        raise AssertionError(f"a test tried to reach the network: {url}")

    monkeypatch.setattr(data, "_urlopen", no_network)
    yield
    torch.set_num_threads(threads)


def child_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def run(out: Path, *args: str, dataset: str = "mnist", tiny: list[str] = TINY) -> int:
    """``main([...])`` in this process; argparse errors (SystemExit) become their status."""
    try:
        return main([dataset, *tiny, "--out", str(out), *args])
    except SystemExit as e:
        return e.code


def checkpoint(out: Path) -> dict:
    return torch.load(out / loop.CHECKPOINT, map_location="cpu", weights_only=False)


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / loop.METRICS).read_text().splitlines()]


def strip_times(value):
    if isinstance(value, dict):
        return {k: strip_times(v) for k, v in value.items() if k not in NOT_COMPUTED}
    if isinstance(value, (list, tuple)):
        return [strip_times(v) for v in value]
    return value




def assert_same(a, b, where: str = "checkpoint") -> None:
    """Equal structure, tensors equal bit for bit (dtype and shape too), other values equal."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.shape == b.shape, f"{where}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
        assert a.dtype == b.dtype, f"{where}: {a.dtype} vs {b.dtype}"
        assert torch.equal(a, b), f"{where}: tensors differ"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(map(str, a))} vs {sorted(map(str, b))}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def assert_same_run(out_a: Path, out_b: Path) -> None:
    """Two finished runs hold the same computation: checkpoints and metrics (but wall times)."""
    a, b = checkpoint(out_a), checkpoint(out_b)
    for key in ("epoch", "batch", "model", "optimizer", "scheduler"):
        assert_same(a[key], b[key], key)
    assert_same(strip_times(a["running"]), strip_times(b["running"]), "running")
    assert_same(strip_times(a["history"]), strip_times(b["history"]), "history")
    assert_same(strip_times(metrics(out_a)), strip_times(metrics(out_b)), "metrics.jsonl")
    assert [m["test_accuracy"] for m in metrics(out_a)] == [m["test_accuracy"] for m in metrics(out_b)]


def device_states(ck: dict) -> list[dict]:
    """The DeviceArray state_dicts in a checkpoint's optimizer state (binary tensors, in order)."""
    states = ck["optimizer"]["state"]
    return [states[k]["device"] for k in sorted(states) if "device" in states[k]]


def updates_at_start(**settings) -> list[int]:
    """DeviceArray.updates of a fresh run's arrays (the optimizer may program them before training)."""
    settings = run_settings.RunSettings(backend="reference", device="cpu", **settings)
    optimizer, _ = loop.build_optimizer(settings, loop.build_model(settings), "reference")
    return [array.updates for array in optimizer.device_arrays()]


def one_line_error(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line message, got {text!r}"
    assert lines[0].startswith("python -m rramk.train: error:"), lines[0]
    return lines[0]


# ----------------------------------------------------------------------------- 1. resume


@needs_mnist
@pytest.mark.parametrize("imperfections", ["all", "ideal"])
def test_resume_continues_bit_for_bit(tmp_path, imperfections):
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ["--imperfections", imperfections]
    assert run(straight, *common, "--epochs", "2") == 0
    assert run(split, *common, "--epochs", "1") == 0
    after_one = checkpoint(split)
    assert (after_one["epoch"], after_one["batch"]) == (1, 0)
    assert run(split, *common, "--epochs", "2", "--resume") == 0  # --epochs may differ on resume

    assert_same_run(straight, split)
    final = checkpoint(split)
    assert (final["epoch"], final["batch"]) == (2, 0)
    assert [m["epoch"] for m in metrics(split)] == [1, 2]
    # the second epoch did change the state (so the equality above is not of two untouched runs)
    assert not torch.equal(after_one["model"]["bn1.weight"], final["model"]["bn1.weight"])
    arrays_one, arrays_two = device_states(after_one), device_states(final)
    if imperfections == "ideal":
        assert arrays_two == []
        assert not torch.equal(after_one["model"]["fc1.weight"], final["model"]["fc1.weight"])
    else:
        assert len(arrays_two) == 2  # fc1, fc2
        for one, two in zip(arrays_one, arrays_two):
            assert two["updates"] == one["updates"] + BATCHES
            assert not torch.equal(one["pulses_done"], two["pulses_done"])
    summary = json.loads((split / loop.SUMMARY).read_text())
    assert summary["final_test_accuracy"] == metrics(straight)[-1]["test_accuracy"]


@needs_mnist
def test_resume_resumes_sign_flip_counter_as_an_integer(tmp_path):
    """The sign-flip counter of WeakResetAdam must stay int64 across a resume (a float32 counter
    loses flips past 2**24 per tensor and epoch, so a resumed run's sign_flips_per_synapse would
    differ from an unbroken run's on large models)."""
    assert run(tmp_path, "--epochs", "1") == 0
    assert run(tmp_path, "--epochs", "2", "--resume") == 0
    flips = [s["sign_flips"] for s in checkpoint(tmp_path)["optimizer"]["state"].values() if "sign_flips" in s]
    assert flips and all(f.dtype == torch.int64 for f in flips), [f.dtype for f in flips]


# ----------------------------------------------------------------------------- 2. Ctrl-C


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    """A 2-epoch device run without interruption (the reference of the Ctrl-C tests)."""
    if not HAVE_MNIST:
        pytest.skip("real MNIST not found")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("unbroken")
    assert run(out, "--epochs", "2") == 0
    torch.set_num_threads(threads)
    return out


def interrupt_after(monkeypatch, k: int) -> None:
    """A real SIGINT to this process from inside the k-th optimizer step (as a Ctrl-C then)."""
    original = rramk.optim.WeakResetAdam.step
    calls = {"n": 0}

    def step(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == k:
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler  # train's handler is on
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(rramk.optim.WeakResetAdam, "step", step)


@needs_mnist
@pytest.mark.parametrize("k", [2, BATCHES, BATCHES + 2])  # mid epoch 1, after its last batch, mid epoch 2
def test_interrupt_then_resume_equals_unbroken(tmp_path, monkeypatch, capsys, unbroken, k):
    handler = signal.getsignal(signal.SIGINT)
    interrupt_after(monkeypatch, k)
    assert run(tmp_path, "--epochs", "2") == 130
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is handler  # train() put the previous handler back
    monkeypatch.undo()

    saved = checkpoint(tmp_path)
    expected = divmod(k, BATCHES) if k % BATCHES else (k // BATCHES - 1, BATCHES)  # (epoch, batches done)
    assert (saved["epoch"], saved["batch"]) == expected
    assert saved["batch"] > 0 and saved["running"]["seen"] == 100 * saved["batch"]
    assert [s["updates"] for s in device_states(saved)] == [u + k for u in updates_at_start(dataset="mnist", hidden=32)]
    written = metrics(tmp_path) if (tmp_path / loop.METRICS).exists() else []
    assert len(written) == saved["epoch"] == len(saved["history"])

    assert run(tmp_path, "--epochs", "2", "--resume") == 0
    assert_same_run(unbroken, tmp_path)


@needs_mnist
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_from_outside_the_cli(tmp_path, stop):
    """The real CLI in its own process, SIGINT (Ctrl-C) or SIGTERM (a scheduler's scancel or time limit)
    sent from outside while it trains: status 130, a mid-epoch checkpoint, and --resume reaches the
    state of an unbroken run."""
    tiny = [a if a != "300" else "600" for a in TINY]  # 6 batches an epoch: a wider window to hit
    epochs = "10"
    proc = subprocess.Popen([sys.executable, "-m", "rramk.train", "mnist", *tiny, "--epochs", epochs,
                             "--out", str(tmp_path / "cli")], cwd=REPO_ROOT, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # printed (flushed) after epoch 1: the handler is installed
        assert first.startswith("epoch 1/"), first + proc.stderr.read()
        proc.send_signal(stop)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted; the checkpoint is saved, continue with --resume" in stderr
    saved = checkpoint(tmp_path / "cli")
    assert saved["epoch"] >= 1 and 0 < saved["batch"] <= 6 and saved["epoch"] < int(epochs)

    assert run(tmp_path / "cli", "--epochs", epochs, "--resume", tiny=tiny) == 0
    assert run(tmp_path / "straight", "--epochs", epochs, tiny=tiny) == 0
    assert_same_run(tmp_path / "straight", tmp_path / "cli")


# ----------------------------------------------------------------------------- 3. refusals


@needs_mnist
@pytest.mark.parametrize("change, named", [
    (["--lr-pulses", "10"], "--lr-pulses 8.0 (now 10.0)"),
    (["--imperfections", "d2d"], "--imperfections 'all' (now 'd2d')"),
    (["--seed", "1"], "--seed 0 (now 1)"),
    (["--preset", str(PUBLISHED)], f"--preset '' (now '{PUBLISHED}')"),
])
def test_resume_with_other_settings_is_refused(tmp_path, capsys, change, named):
    assert run(tmp_path, "--epochs", "1") == 0
    before = (tmp_path / loop.CHECKPOINT).read_bytes()
    capsys.readouterr()
    assert run(tmp_path, "--epochs", "2", "--resume", *change) == 2
    message = one_line_error(capsys.readouterr().err)
    assert "other settings" in message and named in message
    assert (tmp_path / loop.CHECKPOINT).read_bytes() == before
    assert len(metrics(tmp_path)) == 1


def test_resume_without_a_checkpoint_is_refused(tmp_path, capsys):
    assert run(tmp_path / "empty", "--epochs", "1", "--resume") == 2
    message = one_line_error(capsys.readouterr().err)
    assert "--resume" in message and "no checkpoint" in message and str(tmp_path / "empty") in message


@needs_mnist
def test_new_run_over_a_checkpoint_is_refused(tmp_path, capsys):
    assert run(tmp_path, "--epochs", "1") == 0
    before = (tmp_path / loop.CHECKPOINT).read_bytes()
    capsys.readouterr()
    assert run(tmp_path, "--epochs", "1") == 2
    message = one_line_error(capsys.readouterr().err)
    assert "--out" in message and "--resume" in message and str(tmp_path) in message
    assert (tmp_path / loop.CHECKPOINT).read_bytes() == before
    assert len(metrics(tmp_path)) == 1


# ----------------------------------------------------------------------------- 4. bad arguments


@pytest.mark.parametrize("argv, named", [
    (["svhn"], "svhn"),
    (["mnist", "--imperfections", "noise"], "--imperfections"),
    (["mnist", "--imperfections", "d2d,noise"], "'noise'"),
    (["mnist", "--epochs", "-1"], "--epochs"),
    (["mnist", "--epochs", "two"], "--epochs"),
    (["mnist", "--batch-size", "0"], "--batch-size"),
    (["mnist", "--lr-pulses", "0"], "--lr-pulses"),
    (["mnist", "--limit-train", "0"], "--limit-train"),
    (["mnist", "--hidden", "-3"], "--hidden"),
    (["cifar10", "--width", "0"], "--width"),
    (["mnist", "--seed", "-1"], "--seed"),
    (["mnist", "--backend", "fast"], "--backend"),
    (["mnist", "--frobnicate"], "--frobnicate"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv, named):
    out = tmp_path / "run"
    try:
        code = main([*argv, "--out", str(out), "--data-dir", str(tmp_path / "no-data"), "--no-download"])
    except SystemExit as e:
        code = e.code
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert named in one_line_error(captured.err)
    assert not out.exists()


# ----------------------------------------------------------------------------- 5. NaN loss


def nan_at_training_call(monkeypatch, k: int) -> None:
    """The k-th training loss (cross entropy with mean reduction) becomes NaN, in the graph."""
    original = loop.F.cross_entropy
    calls = {"n": 0}

    def cross_entropy(logits, target, *args, **kwargs):
        loss = original(logits, target, *args, **kwargs)
        if kwargs.get("reduction", "mean") == "mean":
            calls["n"] += 1
            if calls["n"] == k:
                return loss * float("nan")
        return loss

    monkeypatch.setattr(loop.F, "cross_entropy", cross_entropy)


@needs_mnist
def test_nan_loss_stops_with_status_3_keeping_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    good = tmp_path / "one-epoch"
    assert run(good, "--epochs", "1") == 0
    nan_at_training_call(monkeypatch, BATCHES + 2)  # epoch 2, batch 2
    out = tmp_path / "nan"
    capsys.readouterr()
    assert run(out, "--epochs", "3") == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("python -m rramk.train: stopped:"), err
    assert "nan at epoch 2, batch 2" in err and f"the last good checkpoint is {out / loop.CHECKPOINT}" in err
    saved = checkpoint(out)
    assert (saved["epoch"], saved["batch"]) == (1, 0)
    # exactly the state after epoch 1: the two steps of epoch 2 before the NaN are not in it
    assert_same_run(good, out)
    assert not (out / loop.SUMMARY).exists()
    # the run continues from there once the cause is gone
    monkeypatch.undo()
    assert run(out, "--epochs", "2", "--resume") == 0
    assert [m["epoch"] for m in metrics(out)] == [1, 2]


@needs_mnist
def test_nan_loss_in_the_first_epoch_says_there_is_no_checkpoint(tmp_path, monkeypatch, capsys):
    nan_at_training_call(monkeypatch, 1)
    assert run(tmp_path, "--epochs", "1") == 3
    err = capsys.readouterr().err
    assert "nan at epoch 1, batch 1" in err and "no checkpoint was written yet" in err
    assert not (tmp_path / loop.CHECKPOINT).exists()


# ----------------------------------------------------------------------------- 6. CIFAR-10


def test_cifar10_missing_without_network(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RRAMK_DATA", raising=False)
    code = main(["cifar10", "--data-dir", str(tmp_path), "--no-download", "--width", "0.0625", "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--no-progress", "--device", "cpu"])
    assert code == 2
    err = capsys.readouterr().err
    assert "CIFAR-10 not found" in err
    assert data.CIFAR10_ARCHIVE in err and f"{data.CIFAR10_FOLDER}/data_batch_1" in err
    assert f"{data.CIFAR10_FOLDER}/test_batch" in err
    assert str(tmp_path) in err and "RRAMK_DATA" in err and "--data-dir" in err
    assert "Downloading is disabled" in err
    assert not (tmp_path / "run" / loop.CHECKPOINT).exists()


def write_tiny_cifar10(root: Path, per_batch: int = 20, test: int = 20) -> dict[str, str]:
    """The python version's batches (pickled dicts with bytes keys; rows of 3072 uint8, the red,
    green then blue planes of 32 x 32 pixels), written independently of the loader; returns
    their MD5s."""
    rng = np.random.default_rng(5)
    folder = root / data.CIFAR10_FOLDER
    folder.mkdir(parents=True)
    checksums = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = test if name == "test_batch" else per_batch
        batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in rng.integers(0, 10, n)],
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        checksums[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
    (folder / "batches.meta").write_bytes(pickle.dumps(
        {b"label_names": [c.encode() for c in data.CIFAR10_CLASSES], b"num_vis": 3072}, protocol=2))
    return checksums


def test_tiny_cifar10_run_writes_the_documented_outputs(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CIFAR10_MD5", write_tiny_cifar10(tmp_path / "data"))  # verify the tiny files
    out = tmp_path / "run"
    code = main(["cifar10", "--data-dir", str(tmp_path / "data"), "--no-download", "--width", "0.0625",
                 "--epochs", "1", "--batch-size", "20", "--backend", "reference", "--device", "cpu",
                 "--no-progress", "--out", str(out), "--validation", "20"])
    assert code == 0
    lines = metrics(out)
    assert len(lines) == 1
    record = lines[0]
    for field in ("train_accuracy", "train_loss", "test_accuracy", "test_loss", "seconds", "pulses_per_device",
                  "fraction_past_t_star", "sign_flips_per_synapse"):
        assert field in record and math.isfinite(record[field]), field
    assert record["epoch"] == 1 and 0 <= record["train_accuracy"] <= 1 and 0 <= record["test_accuracy"] <= 1
    assert abs(record["test_accuracy"] * 20 - round(record["test_accuracy"] * 20)) < 1e-9  # 20 test images
    assert record["pulses_per_device"] > 0 and 0 <= record["fraction_past_t_star"] <= 1
    summary = json.loads((out / loop.SUMMARY).read_text())
    assert summary["dataset"] == "cifar10" and summary["epochs"] == 1 and summary["processes"] == 1
    assert summary["final_test_accuracy"] == record["test_accuracy"]
    assert summary["history"] == lines and summary["settings"]["width"] == 0.0625
    saved = checkpoint(out)
    assert saved["format"] == loop.CHECKPOINT_FORMAT and (saved["epoch"], saved["batch"]) == (1, 0)
    assert len(device_states(saved)) == 9  # conv1..conv6, fc7..fc9
    start = updates_at_start(dataset="cifar10", width=0.0625)
    # 100 training images, the last 20 held out: 80 in batches of 20
    assert [s["updates"] for s in device_states(saved)] == [u + 4 for u in start]
    assert summary["validation"] == 20 and 0 <= record["validation_accuracy"] <= 1
    assert abs(record["validation_accuracy"] * 20 - round(record["validation_accuracy"] * 20)) < 1e-9
    assert saved["model"]["conv1.weight"].shape == (24, 3, 3, 3)  # round(0.0625 * 384)


# ----------------------------------------------------------------------------- 7. metrics content


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


# ----------------------------------------------------------------------------- 8. data parallel

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


# ----------------------------------------------------------------------------- 9. data sets


def test_fashion_mnist_trains_the_mnist_network_on_the_published_budget():
    fashion, mnist = run_settings.RunSettings("fashion-mnist"), run_settings.RunSettings("mnist")
    assert (fashion.epochs, fashion.batch_size, fashion.lr_pulses) == (20, 1000, 8.0)
    assert (mnist.epochs, mnist.batch_size, mnist.lr_pulses) == (20, 1000, 8.0)
    assert fashion.out == str(Path("runs") / "fashion-mnist-all-seed0")
    model = loop.build_model(fashion)
    assert (model.fc1.weight.shape, model.fc2.weight.shape) == ((3000, 784), (10, 3000))
    assert_same(model.state_dict(), loop.build_model(mnist).state_dict(), "model")  # same network, same seed
    assert train.parser().parse_args(["fashion-mnist"]).dataset == "fashion-mnist"


def tiny_images(name: str, n_train: int, n_test: int) -> data.ImageDataset:
    g = torch.Generator().manual_seed(2)
    return data.ImageDataset(
        name=name, train_images=torch.randint(0, 256, (n_train, 1, 28, 28), generator=g, dtype=torch.uint8),
        train_labels=torch.arange(n_train) % 10, test_images=torch.randint(0, 256, (n_test, 1, 28, 28), generator=g,
                                                                           dtype=torch.uint8),
        test_labels=torch.arange(n_test) % 10, classes=tuple("abcdefghij"))


def test_a_fashion_mnist_run_loads_fashion_mnist_and_parses_the_imperfections_once(tmp_path, monkeypatch):
    loads, parses = [], []

    def load_fashion_mnist(data_dir=None, *, download=True, limit=None):
        loads.append((data_dir, download, limit))
        return tiny_images("fashion-mnist", 200, 50)

    def refuse(*args, **kwargs):
        raise AssertionError("a fashion-mnist run loaded another data set")

    parse = HfOxWeakReset.from_imperfections
    monkeypatch.setattr(data, "load_fashion_mnist", load_fashion_mnist, raising=False)
    monkeypatch.setattr(data, "load_mnist", refuse)
    monkeypatch.setattr(data, "load_cifar10", refuse)
    monkeypatch.setattr(HfOxWeakReset, "from_imperfections", classmethod(lambda cls, text: parses.append(text)
                                                                          or parse(text)))
    out = tmp_path / "run"
    assert main(["fashion-mnist", "--hidden", "16", "--limit-train", "200", "--batch-size", "100", "--epochs", "1",
                 "--imperfections", "d2d,rtn", "--backend", "reference", "--device", "cpu", "--no-progress",
                 "--no-download", "--data-dir", str(tmp_path / "data"), "--out", str(out), "--validation", "50"]) == 0
    assert loads == [(str(tmp_path / "data"), False, None)]  # the whole training set, then split and limited
    assert parses == ["d2d,rtn"]
    summary = json.loads((out / loop.SUMMARY).read_text())
    assert summary["dataset"] == "fashion-mnist" and summary["imperfections"] == "d2d,rtn"
    assert summary["device_config"] == HfOxWeakReset().only("d2d", "rtn").to_dict()
    saved = checkpoint(out)
    assert saved["model"]["fc1.weight"].shape == (16, 784) and saved["optimizer"]["rramk"]["config"] == \
        summary["device_config"]
    assert [s["updates"] for s in device_states(saved)] == [u + 2 for u in updates_at_start(
        dataset="fashion-mnist", hidden=16, imperfections="d2d,rtn")]


@pytest.mark.skipif(not HAVE_FASHION_MNIST, reason=f"real Fashion-MNIST not found in {DATA_ROOT / 'fashion-mnist'}")
def test_fashion_mnist_learns(tmp_path):
    assert run(tmp_path, "--epochs", "2", dataset="fashion-mnist") == 0
    lines = metrics(tmp_path)
    assert [m["epoch"] for m in lines] == [1, 2]
    assert lines[-1]["test_accuracy"] > 0.4  # 10 classes: chance is 0.1 (this run reaches 0.56)
    assert json.loads((tmp_path / loop.SUMMARY).read_text())["dataset"] == "fashion-mnist"


# ----------------------------------------------------------------------------- 8. --preset: the device


def other_device() -> HfOxWeakReset:
    """A device with other numbers than the published fit, as a preset file may hold (python -m rramk.fit)."""
    return dataclasses.replace(HfOxWeakReset(), pink_alpha=0.05, pink_d=0.3, rtn_p01=2e-3, rtn_p10=2e-2)


@pytest.mark.parametrize("imperfections", ["all", "none", "d2d,rtn", "ideal"])
def test_a_preset_is_the_device_the_run_trains_on(tmp_path, imperfections):
    device = other_device()
    device.save(tmp_path / "mine.json")
    settings = run_settings.RunSettings("mnist", imperfections=imperfections, preset=str(tmp_path / "mine.json"),
                                 hidden=8, backend="reference", device="cpu")
    chosen = HfOxWeakReset.from_imperfections(imperfections)
    if chosen is None:  # the software BNN has no device, whatever the preset
        assert settings.device_config is None
        return
    assert settings.device_config == device.only(*chosen.imperfections)
    assert settings.device_config != run_settings.RunSettings("mnist", imperfections=imperfections).device_config
    assert settings.out == str(Path("runs") / f"mnist-mine-{imperfections.replace(',', '+')}-seed0")
    optimizer, _ = loop.build_optimizer(settings, loop.build_model(settings), "reference")
    arrays = optimizer.device_arrays()
    assert arrays and all(array.config == device.only(*chosen.imperfections) for array in arrays)


def test_scale_and_refresh_apply_to_the_preset(tmp_path):
    other_device().save(tmp_path / "mine.json")
    options = dict(imperfections="d2d,saturation", scale="d2d=0.5", refresh="past_t_star")
    settings = run_settings.RunSettings("mnist", preset=str(tmp_path / "mine.json"), **options)
    assert settings.device_config == other_device().only("d2d", "saturation").scaled(d2d=0.5)
    assert settings.refresh == "past_t_star" and settings.scale == "d2d=0.5"
    assert settings.out == run_settings.RunSettings("mnist", **options).out.replace("mnist-", "mnist-mine-")


def test_settings_from_before_presets_compare_equal():
    old = dataclasses.asdict(run_settings.RunSettings("mnist"))
    del old["preset"]
    assert run_settings.RunSettings(**old).comparable() == run_settings.RunSettings("mnist").comparable()
    assert run_settings.RunSettings(**old).preset == "" and run_settings.RunSettings(**old).preset_record() is None


def _without_m1() -> str:
    document = json.loads(PUBLISHED.read_text())
    del document["parameters"]["m1"]
    return json.dumps(document)


@pytest.mark.parametrize("content, named", [
    (None, "cannot read the preset file"),
    ("{not json", "not a JSON file (line 1"),
    ('{"format": "rramk.something/1"}', "not an rramk preset file"),
    (_without_m1(), "missing parameter(s) m1"),
], ids=["missing", "not-json", "not-a-preset", "missing-parameter"])
def test_a_bad_preset_exits_2_with_one_line(tmp_path, capsys, content, named):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    out = tmp_path / "run"
    assert run(out, "--preset", str(path)) == 2
    captured = capsys.readouterr()
    line = one_line_error(captured.err)
    assert line.startswith(f"python -m rramk.train: error: --preset: {path}: ") and named in line, line
    assert captured.out == "" and not out.exists()


@needs_mnist
def test_the_published_preset_file_trains_the_run_without_a_preset(tmp_path, capsys):
    """--preset of the shipped published fit: the same run bit for bit; another preset: other devices,
    recorded with its path and SHA-256; that file edited, the run does not resume."""
    assert run(tmp_path / "fit", "--epochs", "1") == 0
    assert run(tmp_path / "file", "--epochs", "1", "--preset", str(PUBLISHED)) == 0
    assert_same_run(tmp_path / "fit", tmp_path / "file")
    mine = tmp_path / "mine.json"
    other_device().save(mine)
    assert run(tmp_path / "mine", "--epochs", "1", "--preset", str(mine)) == 0
    summaries = {name: json.loads((tmp_path / name / loop.SUMMARY).read_text()) for name in ("fit", "file", "mine")}
    assert summaries["fit"]["preset"] is None
    assert summaries["file"]["preset"] == json.loads(json.dumps(
        {"path": str(PUBLISHED), "sha256": file_sha256(PUBLISHED), "device": HfOxWeakReset().to_dict()}))
    assert summaries["mine"]["preset"]["path"] == str(mine)
    assert summaries["mine"]["preset"]["sha256"] == file_sha256(mine)
    assert summaries["mine"]["device_config"] == json.loads(json.dumps(other_device().to_dict()))
    fit, other = device_states(checkpoint(tmp_path / "fit")), device_states(checkpoint(tmp_path / "mine"))
    assert any(not torch.equal(a[k], b[k]) for a, b in zip(fit, other) for k in a if isinstance(a[k], torch.Tensor))
    dataclasses.replace(other_device(), pink_alpha=0.01).save(mine)  # the same path, another device
    capsys.readouterr()
    assert run(tmp_path / "mine", "--epochs", "2", "--preset", str(mine), "--resume") == 2
    assert "changed since the checkpoint" in one_line_error(capsys.readouterr().err)
    assert len(metrics(tmp_path / "mine")) == 1


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
