"""MNIST and CIFAR-10 in their official formats, verified, as in-memory uint8 tensors.

Directory layout
----------------
One data directory holds every data set. It is, in order of precedence, the ``data_dir``
argument (the command line's ``--data-dir``), the environment variable ``RRAMK_DATA``, or the
per-user cache ``$XDG_CACHE_HOME/rramk`` (``~/.cache/rramk`` when XDG_CACHE_HOME is unset)::

    <data dir>/
        mnist/
            train-images-idx3-ubyte.gz   (or the same name without .gz)
            train-labels-idx1-ubyte.gz
            t10k-images-idx3-ubyte.gz
            t10k-labels-idx1-ubyte.gz
        cifar-10-python.tar.gz           (the official archive, extracted on first use)
        cifar-10-batches-py/             (the official extracted folder)
            data_batch_1 ... data_batch_5, test_batch

Missing files are downloaded from the official sources when ``download=True`` and the network
allows (atomically: a temporary file in the same directory, checked, then renamed). Otherwise
:class:`DatasetNotFound` says which files to put where and where to fetch them.

Formats
-------
MNIST (LeCun and Cortes) uses the IDX format: a big-endian header, then the raw bytes::

    images: int32 magic 2051 (0x00000803: ubyte, 3 dims), int32 N, int32 rows (28),
            int32 cols (28), then N * rows * cols uint8 pixels, row-major
    labels: int32 magic 2049 (0x00000801: ubyte, 1 dim), int32 N, then N uint8 labels 0..9

CIFAR-10 (Krizhevsky 2009), python version: each batch file is a pickled dict with
``b'data'``, a uint8 array (N, 3072) holding the 1024 red, then 1024 green, then 1024 blue
pixels of each 32x32 image in row-major order (so ``reshape(N, 3, 32, 32)`` is the image),
and ``b'labels'``, N ints 0..9. Batches are unpickled with an allow-list of the globals a
numpy array needs, so a file from an untrusted directory cannot run code.

Checksums
---------
Files whose names appear in the checksum table (by default the official MD5s:
:data:`MNIST_MD5`, :data:`CIFAR10_MD5`) are verified; ``verify=False`` skips the check and
``checksums={...}`` replaces the table (tests use it for their tiny files).

Images are returned as uint8 tensors, (N, 1, 28, 28) for MNIST and (N, 3, 32, 32) for
CIFAR-10, labels as int64 (:class:`ImageDataset`). :func:`normalize` turns images into the
usual standardized float32 and :func:`augment_cifar10` applies random crop and flip to a
whole batch at once, on whatever device the batch lives.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "DATA_ENV",
    "MNIST_CLASSES",
    "MNIST_MD5",
    "MNIST_URLS",
    "NORMALIZATION",
    "ChecksumMismatch",
    "DatasetError",
    "DatasetNotFound",
    "ImageDataset",
    "augment_cifar10",
    "data_dir",
    "load_cifar10",
    "load_mnist",
    "normalize",
]

DATA_ENV = "RRAMK_DATA"
"""Environment variable naming the data directory (below an explicit ``data_dir``)."""

DATA_DIR_FLAG = "--data-dir"
"""The command-line flag the scripts use for the data directory (quoted in error messages)."""

DOWNLOAD_TIMEOUT_S = 10.0
"""Default socket timeout of a download, in seconds."""

# --------------------------------------------------------------------------------------------
# MNIST

MNIST_FOLDER = "mnist"
MNIST_URLS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
"""Official MNIST sources, tried in order (each a prefix to which a file name is appended)."""

MNIST_TRAIN_IMAGES = "train-images-idx3-ubyte"
MNIST_TRAIN_LABELS = "train-labels-idx1-ubyte"
MNIST_TEST_IMAGES = "t10k-images-idx3-ubyte"
MNIST_TEST_LABELS = "t10k-labels-idx1-ubyte"
MNIST_FILES = (MNIST_TRAIN_IMAGES, MNIST_TRAIN_LABELS, MNIST_TEST_IMAGES, MNIST_TEST_LABELS)
"""The four MNIST files, without the ``.gz`` suffix."""

MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    # The same content uncompressed (gunzip of the files above).
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
"""Official MD5 of each MNIST file, compressed and uncompressed (as published by torchvision)."""

MNIST_CLASSES = tuple(str(d) for d in range(10))
MNIST_IMAGE_MAGIC = 2051
MNIST_LABEL_MAGIC = 2049
MNIST_SIDE = 28

# --------------------------------------------------------------------------------------------
# CIFAR-10

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
"""The official CIFAR-10 archive, python version."""

CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_BATCHES = CIFAR10_TRAIN_BATCHES + (CIFAR10_TEST_BATCH,)

CIFAR10_MD5: dict[str, str] = {
    CIFAR10_ARCHIVE: "c58f30108f718f92721af3b95e74349a",
    # The extracted batches (the values torchvision checks).
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
"""Official MD5 of the CIFAR-10 archive and of its extracted batches."""

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR10_SIDE = 32
CIFAR10_ROW = 3 * CIFAR10_SIDE * CIFAR10_SIDE

# --------------------------------------------------------------------------------------------
# Normalisation

NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
"""Per-channel (mean, std) of the training pixels scaled to [0, 1], by data set name."""


# --------------------------------------------------------------------------------------------
# Errors and the returned data set


class DatasetNotFound(FileNotFoundError):
    """Files of a data set are missing and could not be downloaded; the message says what to do."""


class DatasetError(ValueError):
    """A data file is present but unusable (malformed, truncated); the message names the file."""


class ChecksumMismatch(DatasetError):
    """A data file's MD5 differs from the expected one; the message says how to fix it."""


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """A labelled image data set held in memory, split into train and test."""

    name: str
    """Short name, also the key of :data:`NORMALIZATION`: ``"mnist"`` or ``"cifar10"``."""
    train_images: torch.Tensor
    """uint8, (N_train, C, H, W), pixel values 0..255."""
    train_labels: torch.Tensor
    """int64, (N_train,), class indices into ``classes``."""
    test_images: torch.Tensor
    """uint8, (N_test, C, H, W)."""
    test_labels: torch.Tensor
    """int64, (N_test,)."""
    classes: tuple[str, ...]
    """Class names; label k is ``classes[k]``."""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.train_images.shape[1:]
        return (c, h, w)

    def to(self, device: torch.device | str) -> ImageDataset:
        """A copy with every tensor on ``device`` (images stay uint8: 4x less to move)."""
        return replace(
            self,
            train_images=self.train_images.to(device),
            train_labels=self.train_labels.to(device),
            test_images=self.test_images.to(device),
            test_labels=self.test_labels.to(device),
        )


# --------------------------------------------------------------------------------------------
# The data directory


def _resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> tuple[Path, str]:
    """The data directory and a phrase saying where it came from (for error messages)."""
    if data_dir is not None:
        if not isinstance(data_dir, (str, os.PathLike)):
            raise TypeError(f"data_dir must be a str, a path or None, got {type(data_dir).__name__}")
        return Path(data_dir).expanduser(), "the data_dir argument"
    env = os.environ.get(DATA_ENV, "")
    if env:
        return Path(env).expanduser(), f"the environment variable {DATA_ENV}"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative XDG_CACHE_HOME.
    cache = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return cache / "rramk", f"the default cache (neither data_dir nor {DATA_ENV} was given)"


def data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``data_dir`` if given, else ``$RRAMK_DATA``, else ``~/.cache/rramk``.

    The cache respects ``XDG_CACHE_HOME``. The directory is not created here (downloads create it).
    """
    return _resolve_data_dir(data_dir)[0]


# --------------------------------------------------------------------------------------------
# Checksums and downloads


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _checksum_table(
    verify: bool, checksums: Mapping[str, str] | None, official: Mapping[str, str]
) -> Mapping[str, str]:
    if not isinstance(verify, bool):
        raise TypeError(f"verify must be a bool, got {type(verify).__name__}")
    if not verify:
        return {}
    if checksums is None:
        return official
    if not isinstance(checksums, Mapping):
        raise TypeError(f"checksums must map file names to MD5 hex strings, got {type(checksums).__name__}")
    return checksums


def _verify(path: Path, table: Mapping[str, str], dataset: str, source: str) -> None:
    """Check ``path`` against ``table[path.name]`` (files not in the table are not checked)."""
    expected = table.get(path.name)
    if expected is None:
        return
    actual = _md5(path)
    if actual != expected.lower():
        raise ChecksumMismatch(
            f"{dataset} file {path} has MD5 {actual}, expected {expected.lower()}. The file is "
            f"corrupt or not the official one: delete it and run again to re-download it (or "
            f"fetch it yourself from {source}); pass verify=False to use it anyway."
        )


_urlopen = urllib.request.urlopen  # module attribute, so tests can forbid the network


def _download(url: str, dest: Path, *, md5: str | None, timeout: float) -> None:
    """Fetch ``url`` to ``dest`` atomically, with a progress bar, checking ``md5`` when given.

    The bytes go to a temporary file beside ``dest`` that replaces ``dest`` only once complete
    and verified, so an interrupted or corrupt download never leaves a file under the final name.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, _urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            total = int(length) if length and length.isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name, leave=False) as bar:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if md5 is not None and digest.hexdigest() != md5.lower():
            raise ChecksumMismatch(f"downloaded {url} has MD5 {digest.hexdigest()}, expected {md5.lower()}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _not_found(
    dataset: str,
    missing: Sequence[str],
    folder: Path,
    root: Path,
    root_source: str,
    urls: Sequence[str],
    why: str,
    mirrors: Sequence[str] = (),
) -> DatasetNotFound:
    fetch = "\n".join(f"  {u}" for u in urls)
    if mirrors:
        fetch += "\n(the same names also lie under " + ", ".join(mirrors) + ")"
    return DatasetNotFound(
        f"{dataset} not found: missing {', '.join(missing)} in {folder}.\n"
        f"The data directory {root} comes from {root_source}.\n"
        f"{why}\n"
        f"To fix this, download the official files:\n{fetch}\n"
        f"and put them in {folder}, or point rramk at a data directory that holds them with "
        f"{DATA_DIR_FLAG} DIR or the environment variable {DATA_ENV}=DIR."
    )


def _check_download_args(download: bool, timeout: float) -> None:
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {type(download).__name__}")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be None or a positive int (number of training examples), got {limit!r}")


# --------------------------------------------------------------------------------------------
# MNIST


def _read_idx(path: Path, magic: int, dataset: str) -> np.ndarray:
    """Parse one IDX file (gzip or raw, by suffix) with the expected ``magic``; returns uint8."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise DatasetError(
                f"{dataset} file {path} is not a valid gzip file ({type(exc).__name__}: {exc}): "
                f"delete it and re-download it"
            ) from exc
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(
            f"{dataset} file {path} is truncated: {len(raw)} bytes, shorter than its {header}-byte IDX header"
        )
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DatasetError(
            f"{dataset} file {path} has IDX magic number {found}, expected {magic} "
            f"({'images' if magic == MNIST_IMAGE_MAGIC else 'labels'}, uint8, {ndim} dimensions)"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        kind = "truncated" if len(raw) < expected else "too long"
        raise DatasetError(
            f"{dataset} file {path} is {kind}: {len(raw)} bytes (uncompressed), expected {expected} "
            f"for dimensions {dims}: delete it and re-download it"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _mnist_split(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images = _read_idx(images_path, MNIST_IMAGE_MAGIC, "MNIST")
    if images.shape[1:] != (MNIST_SIDE, MNIST_SIDE):
        raise DatasetError(
            f"MNIST file {images_path} holds images of {images.shape[1]}x{images.shape[2]} pixels, "
            f"expected {MNIST_SIDE}x{MNIST_SIDE}"
        )
    labels = _read_idx(labels_path, MNIST_LABEL_MAGIC, "MNIST")
    if len(labels) != len(images):
        raise DatasetError(
            f"MNIST files disagree: {images_path} holds {len(images)} images but {labels_path} "
            f"holds {len(labels)} labels"
        )
    if labels.size and labels.max() >= len(MNIST_CLASSES):
        raise DatasetError(f"MNIST file {labels_path} holds label {labels.max()}, expected 0..9")
    # np.frombuffer views immutable bytes; copy once into tensors torch may write to.
    return (
        torch.from_numpy(images.reshape(-1, 1, MNIST_SIDE, MNIST_SIDE).copy()),
        torch.from_numpy(labels.astype(np.int64)),
    )


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    verify: bool = True,
    checksums: Mapping[str, str] | None = None,
    limit: int | None = None,
    timeout: float = DOWNLOAD_TIMEOUT_S,
) -> ImageDataset:
    """Load MNIST from ``<data dir>/mnist/`` (the four official IDX files, gzip or raw).

    Args:
        data_dir: the data directory; ``None`` means ``$RRAMK_DATA`` or the cache (:func:`data_dir`).
        download: fetch missing files from :data:`MNIST_URLS` (tried in order).
        verify: check each file's MD5 against ``checksums``.
        checksums: file name -> MD5; ``None`` means the official :data:`MNIST_MD5`.
        limit: keep only the first ``limit`` training examples (all when there are fewer).
        timeout: socket timeout of a download, in seconds.

    Returns:
        an :class:`ImageDataset` named ``"mnist"``: uint8 images (N, 1, 28, 28), int64 labels.

    Raises:
        DatasetNotFound: files are missing and could not be downloaded.
        ChecksumMismatch: a file's MD5 is not the expected one.
        DatasetError: a file is malformed (wrong magic, dimensions or size).
    """
    _check_download_args(download, timeout)
    _check_limit(limit)
    table = _checksum_table(verify, checksums, MNIST_MD5)
    root, root_source = _resolve_data_dir(data_dir)
    folder = root / MNIST_FOLDER

    def find(name: str) -> Path | None:
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                return candidate
        return None

    missing = [f"{name}.gz" for name in MNIST_FILES if find(name) is None]
    if missing:
        why = "Downloading is disabled (download=False)."
        if download:
            errors = []
            for file in missing:
                for base in MNIST_URLS:
                    try:
                        _download(base + file, folder / file, md5=table.get(file), timeout=timeout)
                        break
                    except Exception as exc:  # network, HTTP, file system or checksum: try the next
                        errors.append(f"{base + file}: {exc}")
                else:
                    break  # this file is unavailable, so the data set is: stop here
            still = [f"{name}.gz" for name in MNIST_FILES if find(name) is None]
            if still:
                why = "Downloading failed:\n" + "\n".join(f"  {e}" for e in errors)
                missing = still
            else:
                missing = []
        if missing:
            urls = [MNIST_URLS[0] + f for f in missing]
            raise _not_found("MNIST", missing, folder, root, root_source, urls, why, MNIST_URLS[1:])

    paths = {name: find(name) for name in MNIST_FILES}
    for name, path in paths.items():
        assert path is not None
        _verify(path, table, "MNIST", MNIST_URLS[0] + f"{name}.gz")
    train_images, train_labels = _mnist_split(paths[MNIST_TRAIN_IMAGES], paths[MNIST_TRAIN_LABELS])
    test_images, test_labels = _mnist_split(paths[MNIST_TEST_IMAGES], paths[MNIST_TEST_LABELS])
    if limit is not None:
        train_images, train_labels = train_images[:limit].clone(), train_labels[:limit].clone()
    return ImageDataset("mnist", train_images, train_labels, test_images, test_labels, MNIST_CLASSES)


# --------------------------------------------------------------------------------------------
# CIFAR-10

_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 pickles bytes at protocol 2
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, lists, dicts and strings; refuses any other global."""

    def find_class(self, module: str, name: str):  # noqa: ANN201 (pickle's signature)
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        if module == "numpy.core.multiarray":  # Python 2 / numpy 1 pickles; numpy 2 renamed it
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (uint8 (N, 3072) pixels, int64 (N,) labels), validated."""
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except Exception as exc:
        raise DatasetError(
            f"CIFAR-10 batch {path} could not be unpickled ({type(exc).__name__}: {exc}): it is not an "
            f"official python-version batch; delete it and re-download it"
        ) from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DatasetError(f"CIFAR-10 batch {path} must be a dict with keys b'data' and b'labels', got {keys}")
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != CIFAR10_ROW:
        desc = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(f"CIFAR-10 batch {path}: b'data' must be a uint8 array (N, {CIFAR10_ROW}), got {desc}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(
            f"CIFAR-10 batch {path}: b'labels' must be {len(data)} integers (one per image), "
            f"got {labels.dtype} array of shape {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise DatasetError(f"CIFAR-10 batch {path} holds labels {labels.min()}..{labels.max()}, expected 0..9")
    return data, labels.astype(np.int64)


def _extract_cifar10(archive: Path, root: Path) -> None:
    """Extract the batches of the official archive into ``root / cifar-10-batches-py``.

    Only regular files directly under ``cifar-10-batches-py/`` are written, by name, so a
    crafted archive cannot write elsewhere. Each file lands atomically (temporary name, rename).
    """
    folder = root / CIFAR10_FOLDER
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [
                m
                for m in tar.getmembers()
                if m.isfile() and Path(m.name).parent.as_posix() == CIFAR10_FOLDER and Path(m.name).name
            ]
            found = {Path(m.name).name for m in members}
            absent = [b for b in CIFAR10_BATCHES if b not in found]
            if absent:
                raise DatasetError(
                    f"CIFAR-10 archive {archive} lacks {', '.join(f'{CIFAR10_FOLDER}/{b}' for b in absent)}: "
                    f"it is not the official archive; delete it and re-download it from {CIFAR10_URL}"
                )
            folder.mkdir(parents=True, exist_ok=True)
            for member in members:
                source = tar.extractfile(member)
                assert source is not None  # regular file
                dest = folder / Path(member.name).name
                fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=folder)
                try:
                    with os.fdopen(fd, "wb") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
                    os.replace(tmp_name, dest)
                finally:
                    Path(tmp_name).unlink(missing_ok=True)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DatasetError(
            f"CIFAR-10 archive {archive} could not be extracted ({type(exc).__name__}: {exc}): "
            f"delete it and re-download it from {CIFAR10_URL}"
        ) from exc


def load_cifar10(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    verify: bool = True,
    checksums: Mapping[str, str] | None = None,
    limit: int | None = None,
    timeout: float = DOWNLOAD_TIMEOUT_S,
) -> ImageDataset:
    """Load CIFAR-10 (python version) from ``<data dir>/cifar-10-batches-py/``.

    When that folder lacks batches, the official archive ``<data dir>/cifar-10-python.tar.gz``
    is verified and extracted (and downloaded from :data:`CIFAR10_URL` first when it is missing
    and ``download`` is true).

    Args:
        data_dir: the data directory; ``None`` means ``$RRAMK_DATA`` or the cache (:func:`data_dir`).
        download: fetch the archive when neither the batches nor the archive are present.
        verify: check the MD5 of the archive and of each batch against ``checksums``.
        checksums: file name -> MD5; ``None`` means the official :data:`CIFAR10_MD5`.
        limit: keep only the first ``limit`` training examples (all when there are fewer).
        timeout: socket timeout of a download, in seconds.

    Returns:
        an :class:`ImageDataset` named ``"cifar10"``: uint8 images (N, 3, 32, 32), int64 labels.

    Raises:
        DatasetNotFound: neither the batches nor the archive are present, and downloading failed.
        ChecksumMismatch: the archive's or a batch's MD5 is not the expected one.
        DatasetError: the archive or a batch is malformed.
    """
    _check_download_args(download, timeout)
    _check_limit(limit)
    table = _checksum_table(verify, checksums, CIFAR10_MD5)
    root, root_source = _resolve_data_dir(data_dir)
    folder = root / CIFAR10_FOLDER
    archive = root / CIFAR10_ARCHIVE

    def absent() -> list[str]:
        return [b for b in CIFAR10_BATCHES if not (folder / b).is_file()]

    if absent():
        if not archive.is_file():
            why = "Downloading is disabled (download=False)."
            if download:
                try:
                    _download(CIFAR10_URL, archive, md5=table.get(CIFAR10_ARCHIVE), timeout=timeout)
                except Exception as exc:  # network, HTTP, file system or checksum
                    why = f"Downloading failed:\n  {CIFAR10_URL}: {exc}"
            if not archive.is_file():
                missing = [CIFAR10_ARCHIVE] + [f"{CIFAR10_FOLDER}/{b}" for b in absent()]
                raise _not_found(
                    "CIFAR-10", missing, root, root, root_source, [CIFAR10_URL],
                    why + f"\nEither the archive {CIFAR10_ARCHIVE} or the extracted folder {CIFAR10_FOLDER}/ will do.",
                )  # fmt: skip
        _verify(archive, table, "CIFAR-10", CIFAR10_URL)
        _extract_cifar10(archive, root)

    def split(names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        data, labels = [], []
        for name in names:
            path = folder / name
            _verify(path, table, "CIFAR-10", CIFAR10_URL)
            d, l = _read_cifar_batch(path)
            data.append(d)
            labels.append(l)
        images = np.concatenate(data).reshape(-1, 3, CIFAR10_SIDE, CIFAR10_SIDE)
        return torch.from_numpy(images), torch.from_numpy(np.concatenate(labels))

    train_images, train_labels = split(CIFAR10_TRAIN_BATCHES)
    test_images, test_labels = split((CIFAR10_TEST_BATCH,))
    if limit is not None:
        train_images, train_labels = train_images[:limit].clone(), train_labels[:limit].clone()
    return ImageDataset("cifar10", train_images, train_labels, test_images, test_labels, CIFAR10_CLASSES)


# --------------------------------------------------------------------------------------------
# Normalisation and augmentation


def normalize(images: torch.Tensor, dataset_name: str) -> torch.Tensor:
    """Standardize images per channel: ``(x - mean_c) / std_c`` in float32 (:data:`NORMALIZATION`).

    uint8 images are first scaled by 1/255; floating-point images are taken to be in [0, 1]
    already. Works on (C, H, W) or (N, C, H, W) on any device.
    """
    if dataset_name not in NORMALIZATION:
        raise ValueError(f"dataset_name must be one of {sorted(NORMALIZATION)}, got {dataset_name!r}")
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor (C, H, W) or (N, C, H, W), got {shape}")
    mean, std = NORMALIZATION[dataset_name]
    if images.shape[-3] != len(mean):
        raise ValueError(
            f"images must have {len(mean)} channel(s) for {dataset_name}, got shape {tuple(images.shape)}"
        )
    if images.dtype == torch.uint8:
        x = images.to(torch.float32) / 255.0
    elif images.dtype.is_floating_point:
        x = images.to(torch.float32)
    else:
        raise ValueError(f"images must be uint8 (0..255) or floating point (0..1), got {images.dtype}")
    m = torch.tensor(mean, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    return (x - m) / s


def augment_cifar10(
    images: torch.Tensor, generator: torch.Generator, *, padding: int = 4, fill: float = 0.0
) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, for a whole batch at once.

    Each image is padded by ``padding`` pixels of value ``fill`` on every side, cropped back to
    its size (H, W) at an offset (dy, dx) drawn uniformly from 0..2*padding, and mirrored
    left-right with probability 1/2: the standard CIFAR-10 augmentation (crop 32, padding 4).
    One gather does it all, with no loop over images. The draws come from ``generator`` in the
    order dy, dx, flip (on the generator's device), so a given generator state gives the same
    output. Padding with zero after :func:`normalize` pads with the mean colour; augment before
    normalizing to pad with black.

    Args:
        images: floating point (N, C, H, W), on any device.
        generator: the source of randomness.
        padding: pixels added on each side before cropping (0: flip only).
        fill: value of the padding pixels.

    Returns:
        a new tensor like ``images``.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.dtype.is_floating_point:
        desc = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a floating-point tensor (N, C, H, W), got {desc}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")
    n, c, h, w = images.shape
    gdev = generator.device
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gdev).to(images.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gdev).to(images.device)
    flip = torch.randint(0, 2, (n,), generator=generator, device=gdev).to(device=images.device, dtype=torch.bool)

    padded = F.pad(images, (padding, padding, padding, padding), value=fill)
    wp = w + 2 * padding
    i = torch.arange(h, device=images.device)
    j = torch.arange(w, device=images.device)
    rows = dy[:, None] + i  # (N, H)
    cols = dx[:, None] + torch.where(flip[:, None], w - 1 - j, j)  # (N, W)
    index = (rows[:, :, None] * wp + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
    return padded.reshape(n, c, -1).gather(2, index).view(n, c, h, w)
