"""rramk.data: Fashion-MNIST, the MNIST code path with its own folder, sources, checksums and class names.

Tiny files in the IDX format (tests/test_data.py's writers); a ``.gz`` file passes with its own
official MD5 or with its decompressed content's, whatever its gzip wrapper. The network is never
used. The real data set is checked where this workplace has a copy.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
from pathlib import Path

import pytest
import torch

import rramk.data as data
from rramk.data import ChecksumMismatch, DatasetError, DatasetNotFound, ImageDataset, load_fashion_mnist, load_mnist
from tests.test_data import _isolated  # noqa: F401  (autouse: no network, no RRAMK_DATA)
from tests.test_data import MNIST_NAMES, REAL_DATA, TinyMnist, assert_mnist_equal, md5

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


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
