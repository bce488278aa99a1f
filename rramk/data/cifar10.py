"""CIFAR-10 (Krizhevsky 2009), python version: batches, extraction of the archive, augmentation.

In the data directory: ``cifar-10-python.tar.gz`` (the official archive, extracted on first use) or
``cifar-10-batches-py/`` (the official extracted folder: ``data_batch_1`` ... ``data_batch_5``,
``test_batch``). Each batch file is a pickled dict with ``b'data'``, a uint8 array (N, 3072) holding
the 1024 red, then 1024 green, then 1024 blue pixels of each 32x32 image in row-major order (so
``reshape(N, 3, 32, 32)`` is the image), and ``b'labels'``, N ints 0..9. Batches are unpickled with
an allow-list of the globals a numpy array needs, so a file from an untrusted directory cannot run
code. :func:`augment_cifar10` applies random crop and flip to a whole batch at once, on whatever
device the batch lives.
"""

from __future__ import annotations

import functools
import os
import pickle
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from .dataset import NORMALIZATION, ImageDataset, normalize
from .files import (
    DOWNLOAD_TIMEOUT_S,
    DatasetError,
    _check_download_args,
    _check_limit,
    _checksum_table,
    _download,
    _not_found,
    _resolve_data_dir,
    _verify,
)

__all__ = ["CIFAR10_CLASSES", "CIFAR10_MD5", "CIFAR10_URL", "augment_cifar10", "load_cifar10"]

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
# Batches and the archive

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


def _absent_batches(folder: Path) -> list[str]:
    """The batch files (:data:`CIFAR10_BATCHES`) that ``folder`` lacks, in order."""
    return [b for b in CIFAR10_BATCHES if not (folder / b).is_file()]


def _download_cifar10_archive(
    root: Path, root_source: str, table: Mapping[str, str], *, download: bool, timeout: float
) -> None:
    """Fetch the missing archive into ``root`` when ``download`` allows; DatasetNotFound when it is still missing."""
    archive = root / CIFAR10_ARCHIVE
    why = "Downloading is disabled (download=False)."
    if download:
        try:
            _download(CIFAR10_URL, archive, md5=table.get(CIFAR10_ARCHIVE), timeout=timeout)
        except Exception as exc:  # network, HTTP, file system or checksum
            why = f"Downloading failed:\n  {CIFAR10_URL}: {exc}"
    if not archive.is_file():
        missing = [CIFAR10_ARCHIVE] + [f"{CIFAR10_FOLDER}/{b}" for b in _absent_batches(root / CIFAR10_FOLDER)]
        raise _not_found(
            "CIFAR-10", missing, root, root, root_source, [CIFAR10_URL],
            why + f"\nEither the archive {CIFAR10_ARCHIVE} or the extracted folder {CIFAR10_FOLDER}/ will do.",
        )  # fmt: skip


def _read_cifar10_split(
    folder: Path, names: Sequence[str], table: Mapping[str, str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The batches ``names`` of ``folder``, each verified then read, as uint8 (N, 3, 32, 32) and int64 (N,)."""
    data, labels = [], []
    for name in names:
        path = folder / name
        _verify(path, table, "CIFAR-10", CIFAR10_URL)
        d, l = _read_cifar_batch(path)
        data.append(d)
        labels.append(l)
    images = np.concatenate(data).reshape(-1, 3, CIFAR10_SIDE, CIFAR10_SIDE)
    return torch.from_numpy(images), torch.from_numpy(np.concatenate(labels))


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
    if _absent_batches(folder):
        if not archive.is_file():
            _download_cifar10_archive(root, root_source, table, download=download, timeout=timeout)
        _verify(archive, table, "CIFAR-10", CIFAR10_URL)
        _extract_cifar10(archive, root)
    train_images, train_labels = _read_cifar10_split(folder, CIFAR10_TRAIN_BATCHES, table)
    test_images, test_labels = _read_cifar10_split(folder, (CIFAR10_TEST_BATCH,), table)
    if limit is not None:
        train_images, train_labels = train_images[:limit].clone(), train_labels[:limit].clone()
    return ImageDataset("cifar10", train_images, train_labels, test_images, test_labels, CIFAR10_CLASSES)


# --------------------------------------------------------------------------------------------
# Augmentation


@functools.lru_cache(maxsize=None)  # read once per training batch: computed once per data set
def normalized_black(dataset_name: str) -> tuple[float, ...]:
    """The value of a black pixel after :func:`normalize`, per channel: the padding of the published crop."""
    mean, _ = NORMALIZATION[dataset_name]
    return tuple(normalize(torch.zeros(len(mean), 1, 1, dtype=torch.uint8), dataset_name).flatten().tolist())


def augment_cifar10(
    images: torch.Tensor, generator: torch.Generator, *, padding: int = 4, fill: float | Sequence[float] = 0.0
) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, for a whole batch at once.

    Each image is padded by ``padding`` pixels of value ``fill`` on every side, cropped back to
    its size (H, W) at an offset (dy, dx) drawn uniformly from 0..2*padding, and mirrored
    left-right with probability 1/2: the standard CIFAR-10 augmentation (crop 32, padding 4).
    One gather does it all, with no loop over images. The draws come from ``generator`` in the
    order dy, dx, flip (on the generator's device), so a given generator state gives the same
    output. Padding with zero after :func:`normalize` pads with the mean colour; the published
    recipe (torchvision's RandomCrop before Normalize) pads with black: after normalizing, pass
    ``fill=normalized_black(name)``, which gives the same tensor bit for bit.

    Args:
        images: floating point (N, C, H, W), on any device.
        generator: the source of randomness.
        padding: pixels added on each side before cropping (0: flip only).
        fill: value of the padding pixels, one for every channel or one per channel.

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
    fills = [float(fill)] * c if isinstance(fill, (int, float)) else [float(v) for v in fill]
    if len(fills) != c:
        raise ValueError(f"fill must be one number or one per channel ({c}), got {len(fills)} values")
    gdev = generator.device
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gdev).to(images.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gdev).to(images.device)
    flip = torch.randint(0, 2, (n,), generator=generator, device=gdev).to(device=images.device, dtype=torch.bool)

    wp = w + 2 * padding
    padded = torch.tensor(fills, dtype=images.dtype, device=images.device).view(1, c, 1, 1).repeat(
        n, 1, h + 2 * padding, wp)
    padded[:, :, padding:padding + h, padding:padding + w] = images
    i = torch.arange(h, device=images.device)
    j = torch.arange(w, device=images.device)
    rows = dy[:, None] + i  # (N, H)
    cols = dx[:, None] + torch.where(flip[:, None], w - 1 - j, j)  # (N, W)
    index = (rows[:, :, None] * wp + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
    return padded.reshape(n, c, -1).gather(2, index).view(n, c, h, w)
