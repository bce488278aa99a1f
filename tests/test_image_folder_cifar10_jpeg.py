"""The JPEG copy of CIFAR-10 (load_cifar10_jpeg): not found, its digest, the trainer's recipe, and the real
shared copy in the slow test, when it is present (tiny trees from tests/test_image_folder.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import rramk.data as data
from rramk.data import (
    CIFAR10_CLASSES,
    CIFAR10_JPEG_DIGEST,
    NORMALIZATION,
    ChecksumMismatch,
    DatasetNotFound,
    load_cifar10_jpeg,
    validation_split,
)
from tests.test_image_folder import REAL_DATA, REAL_TAR, _mk, independent_digest, make_tar, make_tree, one_line
from tests.test_image_folder import _isolated  # noqa: F401  (autouse: no RRAMK_DATA, a cache of the test's own)


# --------------------------------------------------------------------------------------------
# The JPEG copy of CIFAR-10


def cifar_tree(root: Path) -> Path:
    counts = {c: 3 for c in CIFAR10_CLASSES}
    return make_tree(root, counts=counts, test_counts={c: 1 for c in CIFAR10_CLASSES}, classes=CIFAR10_CLASSES)


def test_cifar10_jpeg_not_found_says_where_and_that_nothing_downloads(tmp_path):
    with pytest.raises(DatasetNotFound) as exc:
        load_cifar10_jpeg(tmp_path, download=True)
    message = str(exc.value)
    assert str(tmp_path / "cifar10-jpeg") in message and "cifar10-jpeg.tar.gz" in message
    assert "no download source" in message and "RRAMK_DATA" in message and "--data-dir" in message


def test_cifar10_jpeg_verifies_the_digest(tmp_path, monkeypatch):
    folder = tmp_path / "cifar10-jpeg"
    tree = cifar_tree(tmp_path / "tree")
    archive = make_tar(tree, _mk(folder / "cifar10-jpeg.tar.gz"))
    digest = independent_digest(tree)
    with pytest.raises(ChecksumMismatch) as exc:
        load_cifar10_jpeg(tmp_path)
    message = one_line(exc)
    assert str(archive) in message and digest in message and CIFAR10_JPEG_DIGEST in message
    assert "verify=False" in message
    ds = load_cifar10_jpeg(tmp_path, verify=False)
    assert ds.name == "cifar10-jpeg" and ds.classes == CIFAR10_CLASSES
    assert ds.train_labels[:10].tolist() == list(range(10))  # interleaved
    monkeypatch.setattr(data, "CIFAR10_JPEG_DIGEST", digest)  # reaches image_folder through rramk.data
    limited = load_cifar10_jpeg(tmp_path, limit=20)
    assert len(limited.train_images) == 20 and sorted(limited.train_labels.tolist()) == sorted(list(range(10)) * 2)
    assert torch.equal(limited.train_images, ds.train_images[:20])
    # an extracted tree serves when the archive is absent
    archive.unlink()
    os.rename(tree / "train", folder / "train")
    os.rename(tree / "test", folder / "test")
    assert torch.equal(load_cifar10_jpeg(tmp_path).test_images, ds.test_images)
    monkeypatch.setenv("RRAMK_DATA", str(tmp_path))
    assert torch.equal(load_cifar10_jpeg().train_labels, ds.train_labels)


def test_trainer_knows_cifar10_jpeg():
    from rramk.studies.runner import SHORT_BUDGET
    from rramk.training.run_settings import DATASETS, RunSettings

    recipe, official = DATASETS["cifar10-jpeg"], DATASETS["cifar10"]
    assert recipe.loader == "load_cifar10_jpeg" and callable(getattr(data, recipe.loader))
    assert recipe.published == official.published and recipe.augment == official.augment
    assert list(recipe.networks) == list(official.networks)
    assert SHORT_BUDGET["cifar10-jpeg"] == SHORT_BUDGET["cifar10"]
    settings = RunSettings("cifar10-jpeg")
    assert settings.dataset == "cifar10-jpeg" and "cifar10-jpeg" in settings.out
    assert len(NORMALIZATION["cifar10-jpeg"][0]) == 3


@pytest.mark.slow
@pytest.mark.skipif(not REAL_TAR.is_file(), reason=f"the shared JPEG copy is not at {REAL_TAR}")
def test_the_shared_jpeg_copy(tmp_path):
    ds = load_cifar10_jpeg(REAL_DATA)  # verifies CIFAR10_JPEG_DIGEST
    assert ds.name == "cifar10-jpeg" and ds.classes == CIFAR10_CLASSES
    assert ds.train_images.shape == (50_000, 3, 32, 32) and ds.test_images.shape == (10_000, 3, 32, 32)
    assert torch.bincount(ds.train_labels, minlength=10).tolist() == [5_000] * 10
    assert torch.bincount(ds.test_labels, minlength=10).tolist() == [1_000] * 10
    (_, _), (_, val_labels) = validation_split(ds.train_images, ds.train_labels, 5_000)
    assert torch.bincount(val_labels, minlength=10).tolist() == [500] * 10
    # the channel statistics of the training pixels, exactly, from per-channel histograms
    counts = np.zeros((3, 256))
    for start in range(0, len(ds.train_images), 5_000):
        chunk = ds.train_images[start:start + 5_000].numpy()
        for c in range(3):
            counts[c] += np.bincount(chunk[:, c].ravel(), minlength=256)
    values = np.arange(256) / 255.0
    mean = (counts * values).sum(1) / counts.sum(1)
    std = np.sqrt((counts * (values - mean[:, None]) ** 2).sum(1) / counts.sum(1))
    readme = ((0.4913, 0.4821, 0.4465), (0.2452, 0.2428, 0.2606))
    assert np.allclose(mean, readme[0], atol=1e-4) and np.allclose(std, readme[1], atol=1e-4), (mean, std)
    assert NORMALIZATION["cifar10-jpeg"] == readme
    # a second load comes from the cache and is the same
    again = load_cifar10_jpeg(REAL_DATA)
    assert torch.equal(again.train_images, ds.train_images) and torch.equal(again.test_labels, ds.test_labels)
