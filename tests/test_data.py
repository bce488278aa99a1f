"""rramk.data: the data directory, MNIST in the IDX format, the returned data set, normalization.

Tiny files are written here in the official IDX format (the writer below follows the published
format description, independently of the loader), so the loaded tensors can be compared exactly
with known contents. The network is never used: downloads go through ``file://`` URLs or a
monkeypatched downloader. The fixture and writers here serve tests/test_data_fashion_mnist.py
and tests/test_data_cifar10.py too.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

import rramk.data as data
from rramk.data import (
    ChecksumMismatch,
    DatasetError,
    DatasetNotFound,
    ImageDataset,
    load_mnist,
    normalize,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
# Read at import, before the autouse fixture below clears RRAMK_DATA for the other tests.
REAL_DATA = Path(os.environ.get("RRAMK_DATA") or REPO_ROOT.parent / "shared" / "datasets")

MNIST_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No network, and no RRAMK_DATA / real cache leaking in from the environment."""

    def local_only(url, *args, **kwargs):
        if not url.startswith("file:"):
            raise AssertionError(f"test tried to reach the network: {url}")
        return urllib.request.urlopen(url, *args, **kwargs)

    monkeypatch.setattr(data, "_urlopen", local_only)
    monkeypatch.delenv("RRAMK_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# Writers of the IDX format


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """IDX: int32 magic, int32 per dimension, big-endian, then the uint8 data row-major."""
    return struct.pack(f">i{array.ndim}i", magic, *array.shape) + array.astype(np.uint8).tobytes()


def write_file(path: Path, payload: bytes, compressed: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if compressed:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


class TinyMnist:
    """Known contents: 7 training and 3 test images with random pixels and labels (in ``root/folder``)."""

    def __init__(self, root: Path, compressed: bool = True, folder: str = "mnist"):
        rng = np.random.default_rng(7)
        self.root = root
        self.folder = root / folder
        self.train_images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
        self.train_labels = rng.integers(0, 10, 7, dtype=np.uint8)
        self.test_images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
        self.test_labels = rng.integers(0, 10, 3, dtype=np.uint8)
        contents = (
            (self.train_images, 2051),
            (self.train_labels, 2049),
            (self.test_images, 2051),
            (self.test_labels, 2049),
        )
        self.paths = {
            name: write_file(self.folder / name, idx_bytes(array, magic), compressed)
            for name, (array, magic) in zip(MNIST_NAMES, contents)
        }

    def checksums(self) -> dict[str, str]:
        return {p.name: md5(p) for p in self.paths.values()}


def assert_mnist_equal(
    ds: ImageDataset, tiny: TinyMnist, n_train: int = 7, name: str = "mnist", classes: tuple = tuple("0123456789")
) -> None:
    assert ds.name == name and ds.classes == classes
    assert ds.train_images.dtype == torch.uint8 and ds.test_images.dtype == torch.uint8
    assert ds.train_labels.dtype == torch.int64 and ds.test_labels.dtype == torch.int64
    assert ds.train_images.shape == (n_train, 1, 28, 28) and ds.test_images.shape == (3, 1, 28, 28)
    assert torch.equal(ds.train_images[:, 0], torch.from_numpy(tiny.train_images[:n_train]))
    assert torch.equal(ds.train_labels, torch.from_numpy(tiny.train_labels[:n_train]).long())
    assert torch.equal(ds.test_images[:, 0], torch.from_numpy(tiny.test_images))
    assert torch.equal(ds.test_labels, torch.from_numpy(tiny.test_labels).long())


# --------------------------------------------------------------------------------------------
# The data directory


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("RRAMK_DATA", str(tmp_path / "from-env"))
    assert data.data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert data.data_dir(str(tmp_path / "explicit")) == tmp_path / "explicit"
    assert data.data_dir() == tmp_path / "from-env"
    monkeypatch.setenv("RRAMK_DATA", "")  # empty means unset
    assert data.data_dir() == tmp_path / "xdg-cache" / "rramk"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.data_dir() == tmp_path / "home" / ".cache" / "rramk"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the XDG spec says
    assert data.data_dir() == tmp_path / "home" / ".cache" / "rramk"
    assert not (tmp_path / "home").exists(), "data_dir() must not create directories"


def test_data_dir_rejects_wrong_type():
    with pytest.raises(TypeError, match="data_dir"):
        data.data_dir(3)  # type: ignore[arg-type]


def test_loader_uses_env_var(monkeypatch, tmp_path):
    tiny = TinyMnist(tmp_path / "env-data")
    monkeypatch.setenv("RRAMK_DATA", str(tmp_path / "env-data"))
    assert_mnist_equal(load_mnist(download=False, verify=False), tiny)


# --------------------------------------------------------------------------------------------
# The package


def test_patching_the_package_reaches_the_submodules():
    """rramk.data is a package now; tests patch its names, which the submodules must see (and lose)."""
    original_download, original_urls = data._download, data.FASHION_MNIST_URLS

    def fake(*args, **kwargs):
        raise AssertionError("unused")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(data, "_download", fake)
        mp.setattr(data, "FASHION_MNIST_URLS", ("file:///nowhere/",))
        assert data.files._download is fake and data.idx._download is fake and data.cifar10._download is fake
        assert data.idx.FASHION_MNIST_URLS == ("file:///nowhere/",)
    assert data._download is original_download and data.idx._download is original_download
    assert data.files._download is original_download and data.cifar10._download is original_download
    assert data.idx.FASHION_MNIST_URLS is original_urls


# --------------------------------------------------------------------------------------------
# MNIST


@pytest.mark.parametrize("compressed", [True, False], ids=["gzip", "raw"])
def test_mnist_exact_contents(tmp_path, compressed):
    tiny = TinyMnist(tmp_path, compressed)
    ds = load_mnist(tmp_path, download=False, checksums=tiny.checksums())
    assert_mnist_equal(ds, tiny)
    ds.train_images[0, 0, 0, 0] = 1  # writable tensors, not views of immutable bytes


def test_mnist_limit(tmp_path):
    tiny = TinyMnist(tmp_path)
    assert_mnist_equal(load_mnist(tmp_path, download=False, verify=False, limit=4), tiny, n_train=4)
    assert_mnist_equal(load_mnist(tmp_path, download=False, verify=False, limit=100), tiny, n_train=7)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="limit"):
            load_mnist(tmp_path, download=False, verify=False, limit=bad)


def test_mnist_official_checksums_are_the_default(tmp_path):
    tiny = TinyMnist(tmp_path)
    with pytest.raises(ChecksumMismatch) as info:
        load_mnist(tmp_path, download=False)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert "f68b3c2dcbeaaa9fbdd348bbdeb94873" in message  # the official MD5
    assert md5(tiny.paths["train-images-idx3-ubyte"]) in message  # the actual one
    assert "delete" in message and "verify=False" in message
    assert_mnist_equal(load_mnist(tmp_path, download=False, verify=False), tiny)


def test_mnist_wrong_checksum_names_file(tmp_path):
    tiny = TinyMnist(tmp_path)
    table = tiny.checksums()
    table["t10k-labels-idx1-ubyte.gz"] = "0" * 32
    with pytest.raises(ChecksumMismatch, match=r"t10k-labels-idx1-ubyte\.gz has MD5 [0-9a-f]{32}, expected 0{32}"):
        load_mnist(tmp_path, download=False, checksums=table)
    assert_mnist_equal(load_mnist(tmp_path, download=False, verify=False, checksums=table), tiny)


def corrupt(tiny: TinyMnist, name: str, transform) -> Path:
    path = tiny.paths[name]
    path.write_bytes(gzip.compress(transform(gzip.decompress(path.read_bytes()))))
    return path


@pytest.mark.parametrize(
    "name, transform, pattern",
    [
        ("train-images-idx3-ubyte", lambda b: struct.pack(">i", 2049) + b[4:], r"magic number 2049, expected 2051"),
        ("t10k-labels-idx1-ubyte", lambda b: struct.pack(">i", 2051) + b[4:], r"magic number 2051, expected 2049"),
        ("train-images-idx3-ubyte", lambda b: b[:-10], r"truncated: 5494 bytes .*expected 5504"),
        ("train-labels-idx1-ubyte", lambda b: b + b"\0", r"too long: 16 bytes .*expected 15"),
        ("t10k-images-idx3-ubyte", lambda b: b[:10], r"truncated: 10 bytes, shorter than its 16-byte IDX header"),
        (
            "t10k-images-idx3-ubyte",
            lambda b: struct.pack(">iiii", 2051, 4, 21, 28) + b[16 : 16 + 4 * 21 * 28],
            r"images of 21x28 pixels, expected 28x28",
        ),
        ("t10k-labels-idx1-ubyte", lambda b: b[:-1] + b"\x0a", r"holds label 10, expected 0\.\.9"),
    ],
    ids=["images-magic", "labels-magic", "truncated", "trailing-bytes", "short-header", "dimensions", "label-range"],
)
def test_mnist_malformed_file_names_it(tmp_path, name, transform, pattern):
    tiny = TinyMnist(tmp_path)
    path = corrupt(tiny, name, transform)
    with pytest.raises(DatasetError, match=pattern) as info:
        load_mnist(tmp_path, download=False, verify=False)
    assert str(path) in str(info.value)


def test_mnist_count_mismatch_names_both_files(tmp_path):
    tiny = TinyMnist(tmp_path)
    corrupt(tiny, "t10k-labels-idx1-ubyte", lambda b: struct.pack(">ii", 2049, 2) + b[8:10])
    with pytest.raises(DatasetError, match="3 images but .* 2 labels") as info:
        load_mnist(tmp_path, download=False, verify=False)
    assert str(tiny.paths["t10k-images-idx3-ubyte"]) in str(info.value)
    assert str(tiny.paths["t10k-labels-idx1-ubyte"]) in str(info.value)


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[:20], lambda b: b[:-8] + bytes(x ^ 0xFF for x in b[-8:-4]) + b[-4:]],
    ids=["truncated-stream", "bad-crc"],
)
def test_mnist_broken_gzip_names_file(tmp_path, damage):
    tiny = TinyMnist(tmp_path)
    path = tiny.paths["train-images-idx3-ubyte"]
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DatasetError, match="not a valid gzip file") as info:
        load_mnist(tmp_path, download=False, verify=False)
    assert str(path) in str(info.value)


def test_mnist_missing_without_download(tmp_path):
    tiny = TinyMnist(tmp_path)
    tiny.paths["train-labels-idx1-ubyte"].unlink()
    tiny.paths["t10k-images-idx3-ubyte"].unlink()
    with pytest.raises(DatasetNotFound) as info:
        load_mnist(tmp_path, download=False)
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    assert "MNIST" in message
    assert "missing train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz in " + str(tmp_path / "mnist") in message
    assert "train-images-idx3-ubyte" not in message  # only the files that are missing
    assert "RRAMK_DATA" in message and "--data-dir" in message
    assert "download=False" in message
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz" in message
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz" in message
    assert "http://yann.lecun.com/exdb/mnist/" in message  # the second official source


def test_mnist_download_failure_tries_mirrors_then_explains(tmp_path, monkeypatch):
    calls = []

    def offline(url, dest, *, md5, timeout):
        calls.append((url, dest, md5, timeout))
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(DatasetNotFound) as info:
        load_mnist(tmp_path, timeout=1.5)
    # Both official mirrors, in order, for the first file; then it stops (the set is incomplete anyway).
    assert [c[0] for c in calls] == [
        "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
        "http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz",
    ]
    assert all(c[1] == tmp_path / "mnist" / "train-images-idx3-ubyte.gz" for c in calls)
    assert all(c[2] == "f68b3c2dcbeaaa9fbdd348bbdeb94873" and c[3] == 1.5 for c in calls)
    message = str(info.value)
    assert "network is unreachable" in message
    for name in MNIST_NAMES:
        assert f"{name}.gz" in message
    assert str(tmp_path / "mnist") in message and "RRAMK_DATA" in message and "data_dir argument" in message


def test_mnist_downloads_from_second_mirror(tmp_path, monkeypatch):
    source = TinyMnist(tmp_path / "server")
    monkeypatch.setattr(data, "MNIST_URLS", ((tmp_path / "nowhere").as_uri() + "/", source.folder.as_uri() + "/"))
    ds = load_mnist(tmp_path / "local", checksums=source.checksums())
    assert_mnist_equal(ds, source)
    local = tmp_path / "local" / "mnist"
    assert sorted(p.name for p in local.iterdir()) == sorted(f"{n}.gz" for n in MNIST_NAMES)  # no temp files left
    for name in MNIST_NAMES:
        assert (local / f"{name}.gz").read_bytes() == source.paths[name].read_bytes()


def test_mnist_download_with_bad_checksum_leaves_nothing(tmp_path, monkeypatch):
    source = TinyMnist(tmp_path / "server")
    monkeypatch.setattr(data, "MNIST_URLS", (source.folder.as_uri() + "/",))
    table = source.checksums()
    table["train-images-idx3-ubyte.gz"] = "1" * 32
    with pytest.raises(DatasetNotFound, match=r"MD5 [0-9a-f]{32}, expected 1{32}"):
        load_mnist(tmp_path / "local", checksums=table)
    assert list((tmp_path / "local" / "mnist").iterdir()) == []


# --------------------------------------------------------------------------------------------
# The returned data set


def test_image_dataset_is_frozen(tmp_path):
    ds = load_mnist(TinyMnist(tmp_path).root, download=False, verify=False)
    with pytest.raises(AttributeError):
        ds.train_images = ds.test_images  # type: ignore[misc]
    assert ds.num_classes == 10 and ds.image_shape == (1, 28, 28)
    moved = ds.to("cpu")
    assert torch.equal(moved.test_images, ds.test_images) and moved.name == "mnist"


# --------------------------------------------------------------------------------------------
# Normalisation


@pytest.mark.parametrize(
    "name, mean, std",
    [
        ("mnist", (0.1307,), (0.3081,)),
        ("fashion-mnist", (0.2860,), (0.3530,)),
        ("cifar10", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    ],
)
def test_normalize_closed_form(name, mean, std):
    c = len(mean)
    # A constant uint8 image v maps to (v / 255 - mean_c) / std_c in every pixel.
    for v in (0, 37, 255):
        out = normalize(torch.full((2, c, 5, 4), v, dtype=torch.uint8), name)
        assert out.dtype == torch.float32 and out.shape == (2, c, 5, 4)
        expected = torch.tensor([(v / 255 - m) / s for m, s in zip(mean, std)], dtype=torch.float32)
        torch.testing.assert_close(out, expected.view(1, c, 1, 1).expand_as(out), rtol=0, atol=1e-6)
    # Pixels at mean_c +- std_c (floats in [0, 1]) map to exactly +-1: both mean and std are used.
    sign = torch.tensor([1.0, -1.0]).repeat(8).view(1, 1, 4, 4)
    image = torch.stack([m + s * sign[0, 0] for m, s in zip(mean, std)])[None].double()
    torch.testing.assert_close(normalize(image, name), sign.expand(1, c, 4, 4).float(), rtol=0, atol=1e-6)


def test_normalize_rejects_bad_input():
    with pytest.raises(ValueError, match="dataset_name"):
        normalize(torch.zeros(1, 1, 2, 2), "imagenet")
    with pytest.raises(ValueError, match="3 channel"):
        normalize(torch.zeros(1, 1, 2, 2), "cifar10")
    with pytest.raises(ValueError, match="int32"):
        normalize(torch.zeros(1, 1, 2, 2, dtype=torch.int32), "mnist")


# --------------------------------------------------------------------------------------------
# The real MNIST (where this workplace has a copy)


@pytest.mark.skipif(not (REAL_DATA / "mnist").is_dir(), reason=f"no real MNIST in {REAL_DATA / 'mnist'}")
def test_real_mnist():
    ds = load_mnist(REAL_DATA, download=False, verify=True)
    assert ds.train_images.shape == (60000, 1, 28, 28) and ds.test_images.shape == (10000, 1, 28, 28)
    train_counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    test_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert torch.bincount(ds.train_labels, minlength=10).tolist() == train_counts
    assert torch.bincount(ds.test_labels, minlength=10).tolist() == test_counts
    for images in (ds.train_images, ds.test_images):
        assert int(images.min()) == 0 and int(images.max()) == 255
    assert abs(ds.train_images.double().mean().item() - 33.318) < 1e-3
    assert abs(ds.test_images.double().mean().item() - 33.791) < 1e-3
