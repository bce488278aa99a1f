"""python -m rramk.train: what a run trains on, the data sets (CIFAR-10, Fashion-MNIST) and the device (--preset).

Tiny runs as in tests/test_train.py (its helpers). CIFAR-10 uses tiny batches in the official
format written here, with the checksum table pointed at them; Fashion-MNIST runs on a stand-in
data set, or on the real one where this workplace has a copy. A preset file is the device a run
simulates: recorded with its path and SHA-256, and refused when it is malformed or has changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import rramk.data as data
import rramk.train as train
import rramk.training.loop as loop
import rramk.training.run_settings as run_settings
from rramk import HfOxWeakReset
from rramk.device.preset import PUBLISHED
from rramk.device.traces import file_sha256
from rramk.train import main
from tests.test_train import _one_thread_no_network  # noqa: F401  (autouse: one thread, no downloads)
from tests.test_train import (
    DATA_ROOT,
    HAVE_FASHION_MNIST,
    assert_same,
    assert_same_run,
    checkpoint,
    device_states,
    metrics,
    needs_mnist,
    one_line_error,
    run,
    updates_at_start,
)


# ----------------------------------------------------------------------------- 1. CIFAR-10


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


# ----------------------------------------------------------------------------- 2. Fashion-MNIST


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


# ----------------------------------------------------------------------------- 3. --preset: the device


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
