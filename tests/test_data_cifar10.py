"""rramk.data: CIFAR-10 in the official python format (folder and archive), and its augmentation.

Tiny batches are written here in the official format (the writer below follows the published
format description, independently of the loader), so the loaded tensors can be compared exactly
with known contents. The network is never used: downloads go through ``file://`` URLs or a
monkeypatched downloader.
"""

from __future__ import annotations

import math
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import rramk.data as data
from rramk.data import (
    CIFAR10_CLASSES,
    ChecksumMismatch,
    DatasetError,
    DatasetNotFound,
    ImageDataset,
    augment_cifar10,
    load_cifar10,
)
from tests.test_data import _isolated  # noqa: F401  (autouse: no network, no RRAMK_DATA)
from tests.test_data import md5

# --------------------------------------------------------------------------------------------
# Writers of the official format


def cifar_batch(rng: np.random.Generator, n: int, label: str) -> dict:
    """A batch dict as in the official python version (bytes keys under encoding='bytes')."""
    return {
        b"batch_label": label.encode(),
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{label}_{i}.png".encode() for i in range(n)],
    }


CIFAR_SIZES = {
    "data_batch_1": 2, "data_batch_2": 3, "data_batch_3": 1, "data_batch_4": 2, "data_batch_5": 2, "test_batch": 3,
}  # fmt: skip


def write_cifar_folder(folder: Path) -> dict[str, dict]:
    rng = np.random.default_rng(11)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name, n in CIFAR_SIZES.items():
        batches[name] = cifar_batch(rng, n, name)
        with open(folder / name, "wb") as f:
            pickle.dump(batches[name], f, protocol=2)
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    (folder / "readme.html").write_text("<html>tiny</html>")
    return batches


def write_cifar_archive(root: Path) -> tuple[Path, dict[str, dict]]:
    """The official archive layout: a gzip tar with the folder cifar-10-batches-py/."""
    staging = root.parent / (root.name + "-staging")
    batches = write_cifar_folder(staging / "cifar-10-batches-py")
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(staging / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return archive, batches


def assert_cifar_equal(ds: ImageDataset, batches: dict[str, dict]) -> None:
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    rows = np.concatenate([b[b"data"] for b in train])
    labels = sum((b[b"labels"] for b in train), [])
    assert ds.name == "cifar10" and ds.classes == CIFAR10_CLASSES
    assert ds.train_images.dtype == torch.uint8 and ds.train_labels.dtype == torch.int64
    assert ds.train_images.shape == (len(rows), 3, 32, 32)
    assert ds.test_images.shape == (3, 3, 32, 32)
    # Layout from the format description, pixel by pixel: row r = 1024 R, 1024 G, 1024 B, row-major.
    n, c, y, x = np.meshgrid(np.arange(len(rows)), np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    expected = rows[n, c * 1024 + y * 32 + x]
    assert torch.equal(ds.train_images, torch.from_numpy(expected))
    assert ds.train_labels.tolist() == labels
    test = batches["test_batch"]
    assert torch.equal(ds.test_images, torch.from_numpy(test[b"data"]).view(3, 3, 32, 32))
    assert ds.test_labels.tolist() == test[b"labels"]


# --------------------------------------------------------------------------------------------
# CIFAR-10


def test_cifar10_folder_exact_contents(tmp_path):
    batches = write_cifar_folder(tmp_path / "cifar-10-batches-py")
    table = {name: md5(tmp_path / "cifar-10-batches-py" / name) for name in CIFAR_SIZES}
    ds = load_cifar10(tmp_path, download=False, checksums=table)
    assert_cifar_equal(ds, batches)
    limited = load_cifar10(tmp_path, download=False, verify=False, limit=3)
    assert torch.equal(limited.train_images, ds.train_images[:3])
    assert torch.equal(limited.train_labels, ds.train_labels[:3])


def test_cifar10_official_batch_checksums_are_the_default(tmp_path):
    write_cifar_folder(tmp_path / "cifar-10-batches-py")
    pattern = r"data_batch_1 has MD5 [0-9a-f]{32}, expected c99cafc152244af753f735de768cd75f"
    with pytest.raises(ChecksumMismatch, match=pattern):
        load_cifar10(tmp_path, download=False)


def test_cifar10_archive_is_verified_and_extracted(tmp_path):
    archive, batches = write_cifar_archive(tmp_path / "data")
    ds = load_cifar10(tmp_path / "data", download=False, checksums={"cifar-10-python.tar.gz": md5(archive)})
    assert_cifar_equal(ds, batches)
    folder = tmp_path / "data" / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*CIFAR_SIZES, "batches.meta", "readme.html"])
    archive.unlink()  # the extracted folder is enough from now on
    assert_cifar_equal(load_cifar10(tmp_path / "data", download=False, verify=False), batches)


def test_cifar10_archive_wrong_checksum(tmp_path):
    archive, _ = write_cifar_archive(tmp_path / "data")
    with pytest.raises(ChecksumMismatch) as info:
        load_cifar10(tmp_path / "data", download=False)  # the official MD5 is the default
    message = str(info.value)
    assert str(archive) in message and "c58f30108f718f92721af3b95e74349a" in message and md5(archive) in message
    assert "delete" in message and "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert not (tmp_path / "data" / "cifar-10-batches-py").exists(), "nothing is extracted from an unverified archive"


def test_cifar10_archive_not_gzip(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"<html>captive portal</html>")
    with pytest.raises(DatasetError, match="could not be extracted") as info:
        load_cifar10(tmp_path, download=False, verify=False)
    assert str(archive) in str(info.value)


def test_cifar10_archive_with_wrong_layout(tmp_path):
    staging = tmp_path / "staging"
    write_cifar_folder(staging / "other-folder")
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(staging / "other-folder", arcname="other-folder")
    with pytest.raises(DatasetError, match=r"lacks cifar-10-batches-py/data_batch_1"):
        load_cifar10(tmp_path, download=False, verify=False)


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


@pytest.mark.parametrize(
    "payload, pattern",
    [
        (
            {b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]},
            r"b'data' must be a uint8 array \(N, 3072\), got uint8 array of shape \(2, 3000\)",
        ),
        ({b"data": np.zeros((2, 3072), np.int16), b"labels": [0, 1]}, r"got int16 array"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, r"b'labels' must be 2 integers"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"labels 0\.\.10, expected 0\.\.9"),
        ({b"labels": [0, 1]}, r"must be a dict with keys b'data' and b'labels'"),
        ([1, 2, 3], r"must be a dict .* got list"),
        (_Evil(), r"global posix\.getcwd is not allowed"),
    ],
    ids=["shape", "dtype", "label-count", "label-range", "missing-key", "not-dict", "foreign-global"],
)
def test_cifar10_malformed_batch_names_it(tmp_path, payload, pattern):
    write_cifar_folder(tmp_path / "cifar-10-batches-py")
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DatasetError, match=pattern) as info:
        load_cifar10(tmp_path, download=False, verify=False)
    assert str(path) in str(info.value)


def test_cifar10_missing_without_download(tmp_path):
    with pytest.raises(DatasetNotFound) as info:
        load_cifar10(tmp_path, download=False)
    message = str(info.value)
    assert "CIFAR-10" in message and "cifar-10-python.tar.gz" in message
    assert "cifar-10-batches-py/data_batch_1" in message
    assert str(tmp_path) in message and "RRAMK_DATA" in message and "--data-dir" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message


def test_cifar10_partial_folder_lists_only_missing_batches(tmp_path):
    write_cifar_folder(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DatasetNotFound) as info:
        load_cifar10(tmp_path, download=False)
    assert "cifar-10-batches-py/data_batch_4" in str(info.value)
    assert "data_batch_1" not in str(info.value)


def test_cifar10_download_failure(tmp_path, monkeypatch):
    calls = []

    def offline(url, dest, *, md5, timeout):
        calls.append((url, dest, md5))
        raise OSError("name resolution failed")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(DatasetNotFound, match="name resolution failed"):
        load_cifar10(tmp_path)
    official = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert calls == [(official, tmp_path / "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")]


def test_cifar10_download_then_extract(tmp_path, monkeypatch):
    archive, batches = write_cifar_archive(tmp_path / "server")
    monkeypatch.setattr(data, "CIFAR10_URL", archive.as_uri())
    ds = load_cifar10(tmp_path / "local", checksums={"cifar-10-python.tar.gz": md5(archive)})
    assert_cifar_equal(ds, batches)
    assert (tmp_path / "local" / "cifar-10-python.tar.gz").read_bytes() == archive.read_bytes()


# --------------------------------------------------------------------------------------------
# Augmentation


def reference_crops(image: torch.Tensor, padding: int) -> tuple[torch.Tensor, list[tuple[int, int, bool]]]:
    """All (dy, dx, flip) crops of one (C, H, W) image, built the slow obvious way."""
    c, h, w = image.shape
    padded = torch.zeros(c, h + 2 * padding, w + 2 * padding, dtype=image.dtype)
    padded[:, padding : padding + h, padding : padding + w] = image
    crops, keys = [], []
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            crop = padded[:, dy : dy + h, dx : dx + w]
            for flip in (False, True):
                crops.append(crop.flip(-1) if flip else crop)
                keys.append((dy, dx, flip))
    return torch.stack(crops), keys


def test_augment_flip_only_on_asymmetric_image(seed):
    image = torch.arange(2 * 3 * 5, dtype=torch.float32).view(1, 2, 3, 5)
    batch = image.expand(400, -1, -1, -1).contiguous()
    out = augment_cifar10(batch, torch.Generator().manual_seed(seed), padding=0)
    same = (out == image).flatten(1).all(1)
    mirrored = (out == image.flip(-1)).flatten(1).all(1)
    assert bool((same ^ mirrored).all()), "each output is the image or its mirror image"
    assert out[mirrored][0, 0, 0].tolist() == [4.0, 3.0, 2.0, 1.0, 0.0]
    # P(flip) = 1/2: the count is Binomial(400, 1/2), within 5 sigma of 200.
    assert abs(int(mirrored.sum()) - 200) <= 5 * math.sqrt(400 / 4)
    # A flip only moves pixels: every output holds the same multiset of values.
    assert torch.equal(out.flatten(1).sort(1).values, batch.flatten(1).sort(1).values)


@pytest.mark.parametrize(
    "shape, padding", [((3, 32, 32), 4), ((2, 6, 7), 4), ((1, 5, 5), 2)], ids=["cifar-3x32x32", "2x6x7", "1x5x5-pad2"]
)
def test_augment_crop_offsets_and_zero_padding(seed, shape, padding):
    c, h, w = shape
    n = 1800 if h < 32 else 300
    image = torch.arange(1, c * h * w + 1, dtype=torch.float32).view(shape)  # unique, nonzero
    out = augment_cifar10(image.expand(n, -1, -1, -1), torch.Generator().manual_seed(seed), padding=padding)
    assert out.shape == (n, c, h, w) and out.dtype == torch.float32
    crops, keys = reference_crops(image, padding)
    matches = (out[:, None] == crops[None]).flatten(2).all(2)  # (n, candidates)
    assert bool((matches.sum(1) == 1).all()), f"output {int((matches.sum(1) != 1).nonzero()[0])} is no valid crop"
    found = [keys[k] for k in matches.int().argmax(1).tolist()]
    span = 2 * padding + 1
    dys = torch.tensor([k[0] for k in found])
    dxs = torch.tensor([k[1] for k in found])
    assert set(dys.tolist()) == set(range(span)) and set(dxs.tolist()) == set(range(span))
    if n >= 1800:  # uniform offsets: each count is Binomial(n, 1/span), within 5 sigma
        sigma = math.sqrt(n * (1 / span) * (1 - 1 / span))
        for counts in (torch.bincount(dys, minlength=span), torch.bincount(dxs, minlength=span)):
            assert bool(((counts - n / span).abs() <= 5 * sigma).all()), counts
    # Zero padding: an offset (dy, dx) shows |dy - p| rows and |dx - p| columns of zeros.
    zeros = (out == 0).flatten(1).sum(1)
    expected = torch.tensor(
        [c * (r * w + q * h - r * q) for r, q in ((abs(dy - padding), abs(dx - padding)) for dy, dx, _ in found)]
    )
    assert torch.equal(zeros, expected)
    assert int(zeros.max()) > 0


def test_augment_same_seed_same_output(seed):
    images = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    a = augment_cifar10(images, torch.Generator().manual_seed(seed))
    b = augment_cifar10(images, torch.Generator().manual_seed(seed))
    c = augment_cifar10(images, torch.Generator().manual_seed(seed + 1))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    again = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert torch.equal(images, again), "the input is left untouched"


def test_augment_fill_value(seed):
    out = augment_cifar10(torch.ones(200, 1, 4, 4), torch.Generator().manual_seed(seed), padding=2, fill=-3.0)
    assert set(out.unique().tolist()) == {1.0, -3.0}


@pytest.mark.parametrize("name", ["cifar10", "cifar10-jpeg"])
def test_augmenting_normalized_images_with_black_is_the_published_crop(seed, name):
    """The published recipe crops (padding black) before it normalizes; rramk normalizes once and augments
    each batch: with fill=normalized_black the two give the same tensor, bit for bit, for every draw."""
    from rramk.data import normalize, normalized_black

    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (64, 3, 32, 32), generator=g, dtype=torch.uint8)
    ours = augment_cifar10(normalize(images, name), torch.Generator().manual_seed(seed), fill=normalized_black(name))
    cropped = augment_cifar10(images.float(), torch.Generator().manual_seed(seed), fill=0.0)  # black, in 0..255
    published = normalize(cropped.to(torch.uint8), name)
    assert torch.equal(ours, published)
    black = torch.tensor(normalized_black(name)).view(1, 3, 1, 1)
    assert (ours == black).all(1).float().mean() > 0.05  # not vacuous: padding crops in
    mean, std = data.NORMALIZATION[name]
    assert list(normalized_black(name)) == pytest.approx([-m / s for m, s in zip(mean, std)], rel=1e-6)


def test_augment_fill_per_channel(seed):
    out = augment_cifar10(torch.ones(100, 2, 4, 4), torch.Generator().manual_seed(seed), padding=2, fill=(-3.0, 5.0))
    assert set(out[:, 0].unique().tolist()) == {1.0, -3.0} and set(out[:, 1].unique().tolist()) == {1.0, 5.0}
    with pytest.raises(ValueError, match="one per channel"):
        augment_cifar10(torch.ones(2, 2, 4, 4), torch.Generator().manual_seed(seed), fill=(1.0, 2.0, 3.0))


def test_augment_rejects_bad_input(seed):
    g = torch.Generator().manual_seed(seed)
    with pytest.raises(ValueError, match="floating-point"):
        augment_cifar10(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), g)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        augment_cifar10(torch.zeros(3, 32, 32), g)
    with pytest.raises(TypeError, match="generator"):
        augment_cifar10(torch.zeros(2, 3, 32, 32), 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="padding"):
        augment_cifar10(torch.zeros(2, 3, 32, 32), g, padding=-1)
