"""MNIST and Fashion-MNIST: their files, sources, checksums and classes, and one loader for both.

Both data sets are the same four IDX files (:mod:`.idx_format`), gzip-compressed (an
uncompressed copy without ``.gz`` will do too), in a folder of the data directory::

    <data dir>/mnist/  or  <data dir>/fashion-mnist/
        train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
        t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz

They differ only by their row of :func:`_idx_datasets` (folder, download sources, checksums,
class names) and by their normalization constants (:data:`rramk.data.dataset.NORMALIZATION`).
A missing file is downloaded from the first source that serves it; every file is checked
(:func:`.idx_format._check_idx`) before any is parsed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .dataset import ImageDataset
from .files import (
    DOWNLOAD_TIMEOUT_S,
    DatasetError,
    _check_download_args,
    _check_limit,
    _checksum_table,
    _download,
    _not_found,
    _resolve_data_dir,
)
from .idx_format import MNIST_IMAGE_MAGIC, MNIST_LABEL_MAGIC, _check_idx, _gunzip, _parse_idx

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MD5",
    "FASHION_MNIST_URLS",
    "MNIST_CLASSES",
    "MNIST_FILES",
    "MNIST_MD5",
    "MNIST_URLS",
    "IdxDataset",
    "load_fashion_mnist",
    "load_mnist",
]

MNIST_TRAIN_IMAGES = "train-images-idx3-ubyte"
MNIST_TRAIN_LABELS = "train-labels-idx1-ubyte"
MNIST_TEST_IMAGES = "t10k-images-idx3-ubyte"
MNIST_TEST_LABELS = "t10k-labels-idx1-ubyte"
MNIST_FILES = (MNIST_TRAIN_IMAGES, MNIST_TRAIN_LABELS, MNIST_TEST_IMAGES, MNIST_TEST_LABELS)
"""The four files of MNIST and of Fashion-MNIST, without the ``.gz`` suffix."""

MNIST_SIDE = 28

# --------------------------------------------------------------------------------------------
# MNIST (LeCun, Cortes and Burges)

MNIST_FOLDER = "mnist"
MNIST_URLS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
"""Official MNIST sources, tried in order (each a prefix to which a file name is appended)."""

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

# --------------------------------------------------------------------------------------------
# Fashion-MNIST (Xiao, Rasul and Vollgraf 2017, Zalando; MIT licence)

FASHION_MNIST_FOLDER = "fashion-mnist"
FASHION_MNIST_URLS: tuple[str, ...] = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
"""Official Fashion-MNIST sources (Zalando's repository and its download site), tried in order."""

FASHION_MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    # The decompressed content, whatever the gzip wrapper (../shared/datasets/README.md).
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
"""Official MD5 of each Fashion-MNIST ``.gz`` file (as published by torchvision) and of its content."""

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class IdxDataset:
    """What sets one data set in the MNIST format apart from another."""

    name: str
    """``ImageDataset.name``, also the key of ``NORMALIZATION``."""
    title: str
    """The name in messages."""
    folder: str
    """The folder under the data directory."""
    urls: tuple[str, ...]
    """Official sources, tried in order, each a prefix to which a file name is appended."""
    md5: Mapping[str, str]
    """Official MD5 by file name: ``<name>.gz`` for the file, ``<name>`` for its content."""
    classes: tuple[str, ...]
    """Class names; label k is ``classes[k]``."""


def _idx_datasets() -> dict[str, IdxDataset]:
    """The data sets in the IDX format, by name (built at each call: a patched constant counts)."""
    return {
        "mnist": IdxDataset("mnist", "MNIST", MNIST_FOLDER, MNIST_URLS, MNIST_MD5, MNIST_CLASSES),
        "fashion-mnist": IdxDataset(
            "fashion-mnist", "Fashion-MNIST", FASHION_MNIST_FOLDER, FASHION_MNIST_URLS, FASHION_MNIST_MD5,
            FASHION_MNIST_CLASSES,
        ),
    }  # fmt: skip


# --------------------------------------------------------------------------------------------
# Reading one split


def _idx_split(
    spec: IdxDataset, images_file: str, labels_file: str, content: Callable[[str], tuple[Path, bytes]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Parse one split; ``content(name)`` gives a file's path and uncompressed bytes, read in order."""
    images_path, images_raw = content(images_file)
    images = _parse_idx(images_path, images_raw, MNIST_IMAGE_MAGIC, spec.title)
    if images.shape[1:] != (MNIST_SIDE, MNIST_SIDE):
        raise DatasetError(
            f"{spec.title} file {images_path} holds images of {images.shape[1]}x{images.shape[2]} pixels, "
            f"expected {MNIST_SIDE}x{MNIST_SIDE}"
        )
    labels_path, labels_raw = content(labels_file)
    labels = _parse_idx(labels_path, labels_raw, MNIST_LABEL_MAGIC, spec.title)
    if len(labels) != len(images):
        raise DatasetError(
            f"{spec.title} files disagree: {images_path} holds {len(images)} images but {labels_path} "
            f"holds {len(labels)} labels"
        )
    if labels.size and labels.max() >= len(spec.classes):
        raise DatasetError(
            f"{spec.title} file {labels_path} holds label {labels.max()}, expected 0..{len(spec.classes) - 1}"
        )
    # np.frombuffer views immutable bytes; copy once into tensors torch may write to.
    return (
        torch.from_numpy(images.reshape(-1, 1, MNIST_SIDE, MNIST_SIDE).copy()),
        torch.from_numpy(labels.astype(np.int64)),
    )


# --------------------------------------------------------------------------------------------
# The loader


def _find_idx(folder: Path, name: str) -> Path | None:
    """The file ``name`` in ``folder``, gzip-compressed (``<name>.gz``) or not, or None."""
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def _missing_idx(folder: Path) -> list[str]:
    """The ``.gz`` names of the :data:`MNIST_FILES` that ``folder`` holds in neither form."""
    return [f"{name}.gz" for name in MNIST_FILES if _find_idx(folder, name) is None]


def _download_idx(
    spec: IdxDataset, folder: Path, missing: list[str], table: Mapping[str, str], timeout: float
) -> list[str]:
    """Fetch each of ``missing`` from the first source of ``spec.urls`` that serves it; the errors met."""
    errors = []
    for file in missing:
        for base in spec.urls:
            try:
                _download(base + file, folder / file, md5=table.get(file), timeout=timeout)
                break
            except Exception as exc:  # network, HTTP, file system or checksum: try the next
                errors.append(f"{base + file}: {exc}")
        else:
            break  # this file is unavailable, so the data set is: stop here
    return errors


def _ensure_idx_files(
    spec: IdxDataset, root: Path, root_source: str, table: Mapping[str, str], *, download: bool, timeout: float
) -> None:
    """Download the files ``<root>/<spec.folder>/`` lacks when allowed; DatasetNotFound for those still missing."""
    folder = root / spec.folder
    missing = _missing_idx(folder)
    if not missing:
        return
    why = "Downloading is disabled (download=False)."
    if download:
        errors = _download_idx(spec, folder, missing, table, timeout)
        missing = _missing_idx(folder)
        if missing:
            why = "Downloading failed:\n" + "\n".join(f"  {e}" for e in errors)
    if missing:
        urls = [spec.urls[0] + f for f in missing]
        raise _not_found(spec.title, missing, folder, root, root_source, urls, why, spec.urls[1:])


def _read_checked_idx(
    spec: IdxDataset, folder: Path, table: Mapping[str, str]
) -> dict[str, tuple[Path, bytes, bytes | None]]:
    """{name: (path, bytes, content if checking unzipped it)} of the four files, each checked against ``table``."""
    # Every file is checked before any is parsed: a wrong file is reported as such first.
    files: dict[str, tuple[Path, bytes, bytes | None]] = {}
    for name in MNIST_FILES:
        path = _find_idx(folder, name)
        assert path is not None
        raw = path.read_bytes()
        files[name] = (path, raw, _check_idx(path, raw, table, spec.title, spec.urls[0] + f"{name}.gz"))
    return files


def _idx_contents(
    files: dict[str, tuple[Path, bytes, bytes | None]], dataset: str
) -> Callable[[str], tuple[Path, bytes]]:
    """``content(name)`` for :func:`_idx_split`: a file's path and uncompressed bytes, taken out of ``files``."""

    def content(name: str) -> tuple[Path, bytes]:
        path, raw, unzipped = files.pop(name)  # pop: the compressed bytes can go once read
        if unzipped is None:
            unzipped = _gunzip(raw, path, dataset) if path.suffix == ".gz" else raw
        return path, unzipped

    return content


def _load_idx(
    spec: IdxDataset,
    data_dir: str | os.PathLike[str] | None,
    *,
    download: bool,
    verify: bool,
    checksums: Mapping[str, str] | None,
    limit: int | None,
    timeout: float,
) -> ImageDataset:
    """Load the data set ``spec`` from ``<data dir>/<spec.folder>/`` (see :func:`load_mnist`)."""
    _check_download_args(download, timeout)
    _check_limit(limit)
    table = _checksum_table(verify, checksums, spec.md5)
    root, root_source = _resolve_data_dir(data_dir)
    _ensure_idx_files(spec, root, root_source, table, download=download, timeout=timeout)
    content = _idx_contents(_read_checked_idx(spec, root / spec.folder, table), spec.title)
    train_images, train_labels = _idx_split(spec, MNIST_TRAIN_IMAGES, MNIST_TRAIN_LABELS, content)
    test_images, test_labels = _idx_split(spec, MNIST_TEST_IMAGES, MNIST_TEST_LABELS, content)
    if limit is not None:
        train_images, train_labels = train_images[:limit].clone(), train_labels[:limit].clone()
    return ImageDataset(spec.name, train_images, train_labels, test_images, test_labels, spec.classes)


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
        verify: check each file's MD5 (or its decompressed content's) against ``checksums``.
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
    return _load_idx(
        _idx_datasets()["mnist"], data_dir,
        download=download, verify=verify, checksums=checksums, limit=limit, timeout=timeout,
    )  # fmt: skip


def load_fashion_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    verify: bool = True,
    checksums: Mapping[str, str] | None = None,
    limit: int | None = None,
    timeout: float = DOWNLOAD_TIMEOUT_S,
) -> ImageDataset:
    """Load Fashion-MNIST from ``<data dir>/fashion-mnist/`` (the same four file names as MNIST).

    The arguments, errors and image layout are those of :func:`load_mnist`, with the sources
    :data:`FASHION_MNIST_URLS` and the checksums :data:`FASHION_MNIST_MD5`, which accept a
    ``.gz`` file re-wrapped by a repackager when its decompressed content is the official one.

    Returns:
        an :class:`ImageDataset` named ``"fashion-mnist"`` with the 10 classes
        :data:`FASHION_MNIST_CLASSES`: uint8 images (N, 1, 28, 28), int64 labels.
    """
    return _load_idx(
        _idx_datasets()["fashion-mnist"], data_dir,
        download=download, verify=verify, checksums=checksums, limit=limit, timeout=timeout,
    )  # fmt: skip
