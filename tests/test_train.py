"""python -m rramk.train: resume bit for bit, Ctrl-C, refusals, bad arguments, NaN.

Every run is tiny (784-32-10 MLP, a few hundred MNIST examples, batches of 100, 1-2 epochs, the
eager ``reference`` device backend so that nothing waits for torch.compile). Most runs call
``rramk.train.main`` in this process (cheap); the Ctrl-C tests start real processes. MNIST is
the real data set (the CLI verifies the official checksums, so it cannot be faked); the tests
that need it are skipped when it is absent. The helpers and the autouse fixture here serve
tests/test_train_inputs.py, test_train_outputs.py and other command tests too.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rramk.data as data
import rramk.optim
import rramk.training.loop as loop
import rramk.training.run_settings as run_settings
from rramk.device.preset import PUBLISHED
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
