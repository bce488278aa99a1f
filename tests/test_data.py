"""rramk.data: loaders of the official MNIST / Fashion-MNIST / CIFAR-10 formats, checksums, errors, augmentation.

Tiny files are written here in the official formats (the IDX writer and the batch writer below
follow the published format descriptions, independently of the loader), so the loaded tensors
can be compared exactly with known contents. The network is never used: downloads go through
``file://`` URLs or a monkeypatched downloader.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import pickle
import struct
import tarfile
import urllib.request
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
    load_fashion_mnist,
    load_mnist,
    normalize,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
# Read at import, before the autouse fixture below clears RRAMK_DATA for the other tests.
REAL_DATA = Path(os.environ.get("RRAMK_DATA") or REPO_ROOT.parent / "shared" / "datasets")

MNIST_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


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
# Writers of the official formats


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
# Fashion-MNIST: the MNIST code path with its own folder, sources, checksums and class names

FASHION_URLS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)


def tiny_fashion(root: Path, compressed: bool = True) -> TinyMnist:
    return TinyMnist(root, compressed, folder="fashion-mnist")


def assert_fashion_equal(ds: ImageDataset, tiny: TinyMnist, n_train: int = 7) -> None:
    assert_mnist_equal(ds, tiny, n_train, name="fashion-mnist", classes=FASHION_CLASSES)


def content_md5s(folder: Path) -> dict[str, str]:
    """MD5 of the IDX content of each file in ``folder`` (gzip or not), by the name without .gz."""
    table = {}
    for path in folder.iterdir():
        payload = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        table[path.name.removesuffix(".gz")] = hashlib.md5(payload).hexdigest()
    return table


def gzip_with_name(payload: bytes, name: str, mtime: int) -> bytes:
    """A gzip member whose header stores a file name and a time, as GNU gzip writes them."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=buffer, mtime=mtime) as f:
        f.write(payload)
    return buffer.getvalue()


def test_fashion_mnist_exact_contents(tmp_path):
    tiny = tiny_fashion(tmp_path)
    ds = load_fashion_mnist(tmp_path, download=False, checksums=tiny.checksums())
    assert_fashion_equal(ds, tiny)
    assert ds.num_classes == 10 and ds.image_shape == (1, 28, 28)
    assert data.FASHION_MNIST_CLASSES == FASHION_CLASSES
    assert_fashion_equal(load_fashion_mnist(tmp_path, download=False, verify=False, limit=4), tiny, n_train=4)
    with pytest.raises(DatasetNotFound, match="MNIST not found"):
        load_mnist(tmp_path, download=False)  # its own folder: fashion-mnist/ is not mnist/


def test_fashion_mnist_official_gz_digest_suffices(tmp_path, monkeypatch):
    tiny = tiny_fashion(tmp_path)
    table = tiny.checksums() | {name: "0" * 32 for name in MNIST_NAMES}  # right .gz MD5s, wrong content MD5s
    monkeypatch.setattr(data, "FASHION_MNIST_MD5", table)  # the default table (checksums=None)
    assert_fashion_equal(load_fashion_mnist(tmp_path, download=False), tiny)
    # Once the .gz MD5 is wrong too, nothing vouches for the file.
    table["t10k-images-idx3-ubyte.gz"] = "1" * 32
    path = tiny.paths["t10k-images-idx3-ubyte"]
    with pytest.raises(ChecksumMismatch) as info:
        load_fashion_mnist(tmp_path, download=False)
    message = str(info.value)
    assert f"Fashion-MNIST file {path} has MD5 {md5(path)}, expected {'1' * 32}" in message
    content_md5 = content_md5s(tiny.folder)["t10k-images-idx3-ubyte"]
    assert f"its decompressed content has MD5 {content_md5}, expected {'0' * 32}" in message
    assert "either match will do" in message and "delete it" in message and "verify=False" in message
    assert FASHION_URLS[0] + "t10k-images-idx3-ubyte.gz" in message


@pytest.mark.parametrize("wrapper", ["no-name-mtime-0", "name-and-mtime", "level-1", "uncompressed"])
def test_fashion_mnist_content_digest_accepts_any_wrapper(tmp_path, monkeypatch, wrapper):
    """What Debian did: the same content in another gzip wrapper, so the .gz MD5s no longer match."""
    tiny = tiny_fashion(tmp_path)
    official = tiny.checksums()
    for name, path in tiny.paths.items():
        payload = gzip.decompress(path.read_bytes())
        if wrapper == "uncompressed":
            path.unlink()
            (tiny.folder / name).write_bytes(payload)
            continue
        rewrapped = {
            "no-name-mtime-0": lambda: gzip.compress(payload, mtime=0),
            "name-and-mtime": lambda: gzip_with_name(payload, f"{name}.gz", mtime=848330186),
            "level-1": lambda: gzip.compress(payload, compresslevel=1, mtime=0),
        }[wrapper]()
        path.write_bytes(rewrapped)
        assert md5(path) != official[path.name]
    monkeypatch.setattr(data, "FASHION_MNIST_MD5", official | content_md5s(tiny.folder))
    assert_fashion_equal(load_fashion_mnist(tmp_path, download=False), tiny)
    if wrapper != "uncompressed":  # the .gz MD5s alone refuse the rewrapped files
        with pytest.raises(ChecksumMismatch, match=r"train-images-idx3-ubyte\.gz has MD5 [0-9a-f]{32}, expected"):
            load_fashion_mnist(tmp_path, download=False, checksums=official)


def _flip_gzip_byte(raw: bytes) -> bytes:
    middle = 10 + (len(raw) - 18) // 2  # inside the deflate stream, between header and trailer
    return raw[:middle] + bytes([raw[middle] ^ 0xFF]) + raw[middle + 1 :]


def _flip_content_byte(raw: bytes) -> bytes:
    payload = bytearray(gzip.decompress(raw))
    payload[100] ^= 0x01  # a pixel: still a well-formed IDX file, only the checksum can tell
    return gzip.compress(bytes(payload))


@pytest.mark.parametrize(
    "damage, pattern, unverified",
    [
        (_flip_gzip_byte, r"it is not a valid gzip file \(.*\), so its content cannot be checked", "not a valid gzip"),
        (lambda raw: raw[: len(raw) // 2], r"it is not a valid gzip file \(EOFError", "not a valid gzip"),
        (_flip_content_byte, r"its decompressed content has MD5 [0-9a-f]{32}, expected [0-9a-f]{32} \(either", None),
        (lambda raw: gzip.compress(gzip.decompress(raw)[:-28]), r"decompressed content has MD5", "truncated"),
    ],
    ids=["flip-gzip-byte", "truncate-gzip", "flip-content-byte", "truncate-content"],
)
def test_fashion_mnist_corrupt_file_is_refused_and_named(tmp_path, monkeypatch, damage, pattern, unverified):
    tiny = tiny_fashion(tmp_path)
    table = tiny.checksums() | content_md5s(tiny.folder)
    monkeypatch.setattr(data, "FASHION_MNIST_MD5", table)
    assert_fashion_equal(load_fashion_mnist(tmp_path, download=False), tiny)  # intact, it passes
    path = tiny.paths["train-images-idx3-ubyte"]
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ChecksumMismatch, match=pattern) as info:
        load_fashion_mnist(tmp_path, download=False)
    message = str(info.value)
    assert message.startswith(f"Fashion-MNIST file {path} has MD5 {md5(path)}, ")  # which file, what it is
    assert table["train-images-idx3-ubyte.gz"] in message and table["train-images-idx3-ubyte"] in message  # expected
    assert "delete it and run again to re-download it" in message and FASHION_URLS[0] in message  # what to do
    # Unverified, a damage the format shows is still refused, naming the file; a changed pixel is not visible.
    if unverified is None:
        load_fashion_mnist(tmp_path, download=False, verify=False)
    else:
        with pytest.raises(DatasetError, match=unverified) as info:
            load_fashion_mnist(tmp_path, download=False, verify=False)
        assert str(path) in str(info.value)


def test_fashion_mnist_missing_names_the_files(tmp_path):
    tiny = tiny_fashion(tmp_path)
    tiny.paths["train-images-idx3-ubyte"].unlink()
    tiny.paths["t10k-labels-idx1-ubyte"].unlink()
    with pytest.raises(DatasetNotFound) as info:
        load_fashion_mnist(tmp_path, download=False)
    message = str(info.value)
    folder = tmp_path / "fashion-mnist"
    missing = "missing train-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"
    assert f"Fashion-MNIST not found: {missing} in {folder}" in message
    assert "train-labels-idx1-ubyte" not in message and "t10k-images-idx3-ubyte" not in message
    assert "download=False" in message and "RRAMK_DATA" in message and "--data-dir" in message
    assert f"put them in {folder}" in message
    assert FASHION_URLS[0] + "train-images-idx3-ubyte.gz" in message
    assert FASHION_URLS[0] + "t10k-labels-idx1-ubyte.gz" in message
    assert FASHION_URLS[1] in message  # the second official source
    # A real MNIST beside it does not stand in for it.
    TinyMnist(tmp_path / "other")
    with pytest.raises(DatasetNotFound, match="missing train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k"):
        load_fashion_mnist(tmp_path / "other", download=False)


def test_fashion_mnist_download_tries_both_official_sources(tmp_path, monkeypatch):
    calls = []

    def offline(url, dest, *, md5, timeout):
        calls.append((url, dest, md5, timeout))
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(DatasetNotFound, match="network is unreachable") as info:
        load_fashion_mnist(tmp_path, timeout=2.5)
    assert [c[0] for c in calls] == [base + "train-images-idx3-ubyte.gz" for base in FASHION_URLS]
    assert all(c[1] == tmp_path / "fashion-mnist" / "train-images-idx3-ubyte.gz" for c in calls)
    assert all(c[2] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d" and c[3] == 2.5 for c in calls)  # the official .gz MD5
    for name in MNIST_NAMES:
        assert f"{name}.gz" in str(info.value)


def test_fashion_mnist_downloads_missing_files(tmp_path, monkeypatch):
    source = tiny_fashion(tmp_path / "server")
    mirrors = ((tmp_path / "nowhere").as_uri() + "/", source.folder.as_uri() + "/")
    monkeypatch.setattr(data, "FASHION_MNIST_URLS", mirrors)
    ds = load_fashion_mnist(tmp_path / "local", checksums=source.checksums())
    assert_fashion_equal(ds, source)
    local = tmp_path / "local" / "fashion-mnist"
    assert sorted(p.name for p in local.iterdir()) == sorted(f"{n}.gz" for n in MNIST_NAMES)
    for name in MNIST_NAMES:
        assert (local / f"{name}.gz").read_bytes() == source.paths[name].read_bytes()


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


# --------------------------------------------------------------------------------------------
# The real Fashion-MNIST (where this workplace has a copy)

REAL_FASHION = REAL_DATA / "fashion-mnist"
needs_real_fashion = pytest.mark.skipif(not REAL_FASHION.is_dir(), reason=f"no real Fashion-MNIST in {REAL_FASHION}")

FASHION_CONTENT_MD5 = {  # ../shared/datasets/README.md
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}


@needs_real_fashion
def test_real_fashion_mnist():
    ds = load_fashion_mnist(REAL_DATA, download=False)  # verified against the official table
    assert ds.name == "fashion-mnist" and ds.classes == FASHION_CLASSES
    assert ds.train_images.shape == (60000, 1, 28, 28) and ds.test_images.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.train_labels, minlength=10).tolist() == [6000] * 10
    assert torch.bincount(ds.test_labels, minlength=10).tolist() == [1000] * 10
    for images in (ds.train_images, ds.test_images):
        assert int(images.min()) == 0 and int(images.max()) == 255
    # The normalization constants are the training set's pixel mean and (population) std in [0, 1].
    counts = torch.bincount(ds.train_images.flatten(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255
    mean = float((counts * values).sum() / counts.sum())
    std = math.sqrt(float((counts * (values - mean) ** 2).sum() / counts.sum()))
    assert data.NORMALIZATION["fashion-mnist"] == ((0.2860,), (0.3530,))
    assert abs(mean - 0.2860) < 5e-5 and abs(std - 0.3530) < 5e-5, (mean, std)
    # The content MD5s alone vouch for these files, whatever their gzip wrapper.
    limited = load_fashion_mnist(REAL_DATA, download=False, checksums=FASHION_CONTENT_MD5, limit=5)
    assert torch.equal(limited.train_images, ds.train_images[:5]) and torch.equal(limited.test_labels, ds.test_labels)


@needs_real_fashion
@pytest.mark.parametrize("damage", ["flip-gzip-byte", "change-a-label", "truncate"])
def test_real_fashion_mnist_corrupt_copy_is_refused(tmp_path, damage):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for name in MNIST_NAMES[:3]:  # the big files are linked, not copied
        (folder / f"{name}.gz").symlink_to(REAL_FASHION / f"{name}.gz")
    raw = (REAL_FASHION / "t10k-labels-idx1-ubyte.gz").read_bytes()
    if damage == "flip-gzip-byte":
        raw = _flip_gzip_byte(raw)
    elif damage == "change-a-label":  # a well-formed file with labels in range: only the checksum can tell
        labels = bytearray(gzip.decompress(raw))
        labels[8 + 1234] = (labels[8 + 1234] + 1) % 10
        raw = gzip.compress(bytes(labels))
    else:
        raw = raw[: len(raw) - 100]
    victim = folder / "t10k-labels-idx1-ubyte.gz"
    victim.write_bytes(raw)
    with pytest.raises(ChecksumMismatch) as info:
        load_fashion_mnist(tmp_path, download=False)
    message = str(info.value)
    official = "bb300cfdad3c16e7a12a480ee83cd310"  # of the .gz
    assert message.startswith(f"Fashion-MNIST file {victim} has MD5 {md5(victim)}, expected {official}")
    assert "15d484375f8d13e6eb1aabb0c3f46965" in message  # the content MD5 it would also have accepted
    assert "delete it and run again to re-download it" in message
    assert ("decompressed content has MD5" in message) == (damage == "change-a-label")
    assert ("not a valid gzip file" in message) == (damage != "change-a-label")
