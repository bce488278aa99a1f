"""The validation split and the epoch rule: a fixed held-out part of the training set, never trained on,
that chooses the epoch a run reports (rramk.data.validation_split, rramk.training.loop)."""

import pytest
import torch

from rramk import data
from rramk.studies.statistics import reported_accuracy, selection_rule
from rramk.training import loop
from rramk.training.run_settings import RunSettings
from rramk.cli import UsageError


def _indexed(n_train: int, n_test: int = 30) -> data.ImageDataset:
    """Images whose first pixel says their index in the official training set (0..n_train-1, n_train < 256)."""
    images = torch.zeros(n_train, 1, 28, 28, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n_train, dtype=torch.uint8)
    return data.ImageDataset(name="mnist", train_images=images, train_labels=torch.arange(n_train) % 10,
                             test_images=torch.zeros(n_test, 1, 28, 28, dtype=torch.uint8),
                             test_labels=torch.arange(n_test) % 10, classes=tuple("0123456789"))


def test_validation_split_is_the_last_n_and_disjoint_from_training():
    images, labels = torch.arange(100).view(100, 1, 1, 1), torch.arange(100)
    (train_x, train_y), (val_x, val_y) = data.validation_split(images, labels, 30)
    assert train_y.tolist() == list(range(70)) and val_y.tolist() == list(range(70, 100))
    assert torch.equal(torch.cat([train_x, val_x]), images)
    (train_x, _), (val_x, val_y) = data.validation_split(images, labels, 0)
    assert len(train_x) == 100 and len(val_x) == 0 == len(val_y)
    for bad in (-1, 100, 2.5, True):
        with pytest.raises(ValueError, match=r"^validation: expected a number of examples in \[0, 100\)"):
            data.validation_split(images, labels, bad)


@pytest.mark.parametrize("seed,limit", [(0, None), (7, None), (0, 50)])
def test_a_run_never_trains_on_its_validation_images_whatever_the_seed_or_limit(monkeypatch, seed, limit):
    monkeypatch.setattr(data, "load_mnist", lambda data_dir=None, *, download=True, limit=None: _indexed(200))
    settings = RunSettings("mnist", validation=40, seed=seed, limit_train=limit, hidden=8, out="unused")
    train_x, train_y, val_x, val_y, test_x, _ = loop.load_data(settings, torch.device("cpu"))
    index = lambda x: set(torch.round(x[:, 0, 0, 0] * 0.3081 * 255 + 0.1307 * 255).long().tolist())  # noqa: E731
    assert index(val_x) == set(range(160, 200))  # the last 40 of the official order, for every seed
    assert index(train_x) == set(range(limit or 160)) and not index(train_x) & index(val_x)
    assert len(test_x) == 30


def test_too_large_a_validation_set_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(data, "load_mnist", lambda data_dir=None, *, download=True, limit=None: _indexed(200))
    with pytest.raises(UsageError, match=r"^--validation: expected a number of examples in \[0, 200\).*got 10000"):
        loop.load_data(RunSettings("mnist", out="unused"), torch.device("cpu"))
    with pytest.raises(UsageError, match="--validation: expected a number of training examples >= 0"):
        RunSettings("mnist", validation=-5)
    assert RunSettings("mnist").validation == 10_000 and RunSettings("cifar10").validation == 5_000


def test_the_epoch_is_chosen_on_validation_never_on_test():
    history = [{"epoch": 1, "validation_accuracy": 0.90, "test_accuracy": 0.99},
               {"epoch": 2, "validation_accuracy": 0.95, "test_accuracy": 0.91},
               {"epoch": 3, "validation_accuracy": 0.95, "test_accuracy": 0.97},
               {"epoch": 4, "validation_accuracy": 0.93, "test_accuracy": 0.92}]
    chosen = loop.selected_epoch(history)
    assert chosen == {"selection": "validation", "selected_epoch": 2, "selected_test_accuracy": 0.91}  # the earliest
    without = [{**h, "validation_accuracy": None} for h in history]
    assert loop.selected_epoch(without) == {"selection": "last epoch", "selected_epoch": 4,
                                            "selected_test_accuracy": 0.92}
    summary = {**chosen, "final_test_accuracy": 0.92}
    assert reported_accuracy(summary) == 0.91 and reported_accuracy({"final_test_accuracy": 0.92}) == 0.92
    assert selection_rule([summary]) == "test accuracy at the epoch of highest validation accuracy"
    assert "; " in selection_rule([summary, {"final_test_accuracy": 0.9}])  # a table that mixes says both


def test_a_summary_names_the_code_that_made_it(tmp_path):
    """provenance.code_version: rramk's version, and in a git checkout its commit (what `git rev-parse HEAD`
    says, asked independently here) and whether tracked files differ from it."""
    import shutil
    import subprocess
    from pathlib import Path

    import rramk
    from rramk import provenance

    info = provenance.code_version()
    assert info["version"] == rramk.__version__
    root = Path(rramk.__file__).resolve().parents[1]
    if shutil.which("git") and (root / ".git").exists():
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        assert info["commit"] == head.strip() and isinstance(info["modified"], bool)
