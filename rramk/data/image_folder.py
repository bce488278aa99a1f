"""Image folders (torchvision's ``ImageFolder`` layout) as a data source, and the JPEG copy of CIFAR-10.

A source is a directory, or a ``.tar`` / ``.tar.gz`` / ``.tgz`` of one (streamed, never extracted),
holding ``train/<class>/<image>`` and ``test/<class>/<image>`` (or those inside one top-level folder).
Images: the :data:`IMAGE_EXTENSIONS` files at any depth below a class folder, dot files ignored,
decoded once with Pillow to RGB uint8 (N, 3, H, W), all of one size. Labels: the class folders sorted
by name (or the order of ``classes``), the same in train and test. Order: by path within a class,
classes interleaved: image k of the n_c of class c at the rank of the key ((k+1/2)/n_c, c) (position
k*C + c for equal sizes), so every stretch of a split (the tail :func:`~rramk.data.validation_split`
holds out, the first ``limit``) holds the classes in proportion, not all of the last class as
``ImageFolder``'s order would. :func:`content_digest`: SHA-256 of the sorted lines
``path NUL sha256(file) LF`` (path from the root: a directory and its tar agree), checked by
``expected_digest``; the decoded tensors are cached by it in ``image-folder/`` of ``$RRAMK_CACHE_DIR``
or ``$XDG_CACHE_HOME/rramk``. Bad input raises :class:`DatasetError` (one line: the file or folder).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .cifar10 import CIFAR10_CLASSES
from .dataset import NORMALIZATION, ImageDataset
from .files import (
    DATA_DIR_FLAG,
    DATA_ENV,
    ChecksumMismatch,
    DatasetError,
    DatasetNotFound,
    _check_limit,
    _resolve_data_dir,
)
from .image_sources import IMAGE_EXTENSIONS, SPLITS, content_digest, read_source

__all__ = [
    "CIFAR10_JPEG_DIGEST",
    "default_cache_dir",
    "load_cifar10_jpeg",
    "load_image_folder",
]

CACHE_ENV = "RRAMK_CACHE_DIR"
CACHE_FORMAT = 1  # bump when the cached tensors or the order of the examples change

CIFAR10_JPEG_FOLDER = "cifar10-jpeg"
CIFAR10_JPEG_ARCHIVE = "cifar10-jpeg.tar.gz"
CIFAR10_JPEG_DIGEST = "78086fc20c1b1c15a635979bf92b1d16ebc3ca6a8a061ac1b650bc528adcbf13"
"""Content digest (:func:`content_digest`) of the shared JPEG copy of CIFAR-10 (datasets/README.md)."""
CIFAR10_JPEG_WORDS = "CIFAR-10 (JPEG copy)"

# The JPEG copy's own training-set statistics, as measured in the shared datasets/README.md ("CIFAR-10
# as JPEG images") and checked against the loaded training set by tests/test_image_folder_cifar10_jpeg.py: the
# re-encoding moves them slightly from the official pixels' (NORMALIZATION["cifar10"]).
NORMALIZATION.setdefault(CIFAR10_JPEG_FOLDER, ((0.4913, 0.4821, 0.4465), (0.2452, 0.2428, 0.2606)))


# --------------------------------------------------------------------------------------------
# The cache


def default_cache_dir() -> Path:
    """The rramk cache directory: ``$RRAMK_CACHE_DIR``, else ``$XDG_CACHE_HOME/rramk``, else ``~/.cache/rramk``."""
    env = os.environ.get(CACHE_ENV, "")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache") / "rramk"


# --------------------------------------------------------------------------------------------
# Layout checks, order, decoding


def _class_files(source: Path, files: dict[str, bytes], folders: set[str], split: str) -> dict[str, list[str]]:
    """{class: its image paths sorted} of one split, every class folder holding at least one image."""
    if split not in folders:
        raise DatasetError(f"image folder {source} has no {split}/ folder: expected {split}/<class>/<image> "
                           f"(the ImageFolder layout, train/ and test/)")
    by_class: dict[str, list[str]] = {}
    for path in sorted(files):
        parts = path.split("/")
        if parts[0] != split:
            continue
        if len(parts) == 2:
            raise DatasetError(f"image folder {source}: {path} lies directly in {split}/, expected "
                               f"{split}/<class>/{parts[1]} (one folder per class)")
        by_class.setdefault(parts[1], []).append(path)
    for folder in sorted(folders):  # the first empty class folder by name
        parts = folder.split("/")
        if len(parts) == 2 and parts[0] == split and parts[1] not in by_class:
            raise DatasetError(f"image folder {source}: class folder {folder}/ holds no images, expected at least "
                               f"one file ending in {', '.join(IMAGE_EXTENSIONS)}")
    if not by_class:
        raise DatasetError(f"image folder {source}: {split}/ holds no class folders, expected {split}/<class>/<image>")
    return {c: sorted(paths) for c, paths in sorted(by_class.items())}


def _interleave(by_class: dict[str, list[str]], classes: Sequence[str]) -> list[tuple[str, int]]:
    """(path, label) with the classes interleaved: image k of class c ranks by ((k + 1/2) / n_c, c)."""
    keyed = sorted(
        (Fraction(2 * k + 1, 2 * len(by_class[name])), label, path)
        for label, name in enumerate(classes)
        for k, path in enumerate(by_class[name])
    )
    return [(path, label) for _, label, path in keyed]


def _decode(data: bytes, path: str) -> np.ndarray:
    """One image file's bytes -> uint8 (H, W, 3) RGB (``path`` only names it in the error)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return np.asarray(image.convert("RGB"))
    except Exception as exc:  # Pillow raises UnidentifiedImageError, OSError, ValueError, SyntaxError...
        why = " ".join(str(exc).split())
        raise DatasetError(f"{path} could not be decoded as an image ({type(exc).__name__}: {why}), "
                           f"expected a readable {', '.join(IMAGE_EXTENSIONS)} file") from exc


def _decode_split(source: Path, files: dict[str, bytes], order: list[tuple[str, int]],
                  first: list) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, 3, H, W) and int64 (N,) of one split; ``first`` holds (path, (W, H)) of the first image."""
    images: np.ndarray | None = None
    for i, (path, _) in enumerate(order):
        try:
            pixels = _decode(files[path], path)
        except DatasetError as exc:
            raise DatasetError(f"image folder {source}: {exc}") from exc.__cause__
        h, w = pixels.shape[:2]
        if not first:
            first.append((path, (w, h)))
        if (w, h) != first[0][1]:
            (w0, h0) = first[0][1]
            raise DatasetError(f"image folder {source}: {path} is {w}x{h} pixels (width x height), expected "
                               f"{w0}x{h0} like {first[0][0]} (all images must share one size)")
        if images is None:
            images = np.empty((len(order), h, w, 3), dtype=np.uint8)
        images[i] = pixels
    assert images is not None  # every split has at least one image
    labels = torch.tensor([label for _, label in order], dtype=torch.int64)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels


# --------------------------------------------------------------------------------------------
# The cache


def _cache_path(root: Path, digest: str, classes: Sequence[str]) -> Path:
    key = hashlib.sha256(f"format {CACHE_FORMAT}\0{chr(0).join(classes)}".encode()).hexdigest()[:16]
    return root / "image-folder" / f"{digest}-{key}.pt"


def _read_cache(path: Path, digest: str, classes: Sequence[str]) -> dict | None:
    """The cached tensors, or None when there are none or they are not usable (then they are rebuilt)."""
    if not path.is_file():
        return None
    try:
        cached = torch.load(path, map_location="cpu", weights_only=True)
        ok = (isinstance(cached, dict) and cached.get("format") == CACHE_FORMAT and cached.get("digest") == digest
              and tuple(cached.get("classes", ())) == tuple(classes))
        for split in SPLITS:
            images, labels = cached[f"{split}_images"], cached[f"{split}_labels"]
            ok = ok and images.dtype == torch.uint8 and images.dim() == 4 and labels.dtype == torch.int64
            ok = ok and labels.shape == (len(images),)
    except Exception:  # truncated, foreign or older file: decode again
        return None
    return cached if ok else None


def _write_cache(path: Path, tensors: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                torch.save(tensors, out)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:  # a read-only or full cache only costs decoding again next time
        warnings.warn(f"could not cache the decoded images in {path} ({type(exc).__name__}: {exc})", stacklevel=3)


# --------------------------------------------------------------------------------------------
# Steps of a load


def _label_order(source: Path, by_split: dict[str, dict[str, list[str]]],
                 classes: Sequence[str] | None) -> tuple[str, ...]:
    """The class names in label order, after checking that train/ and test/ (and ``classes``) agree."""
    train, test = set(by_split["train"]), set(by_split["test"])
    if train != test:
        raise DatasetError(
            f"image folder {source}: the class folders of test/ do not match those of train/, expected the same "
            f"classes in both (only in train/: {', '.join(sorted(train - test)) or 'none'}; "
            f"only in test/: {', '.join(sorted(test - train)) or 'none'})")
    if classes is None:
        return tuple(sorted(train))
    classes = tuple(classes)
    if len(set(classes)) != len(classes) or set(classes) != train:
        raise DatasetError(f"image folder {source} has the class folders {', '.join(sorted(train))} in train/, "
                           f"expected exactly {', '.join(classes)}")
    return classes


def _checked_digest(source: Path, files: dict[str, bytes], expected_digest: str | None, what: str) -> str:
    """The :func:`content_digest` of ``files``; ChecksumMismatch when it is not ``expected_digest`` (if given)."""
    digest = content_digest(files)
    if expected_digest is not None and digest != expected_digest.lower():
        raise ChecksumMismatch(
            f"{what} {source} has content digest {digest}, expected {expected_digest.lower()} (SHA-256 over "
            f"the sorted lines 'path NUL sha256(file) LF' of its {len(files)} images): it is not the expected copy")
    return digest


def _decode_splits(source: Path, files: dict[str, bytes], by_split: dict[str, dict[str, list[str]]],
                   classes: tuple[str, ...], digest: str) -> dict:
    """The tensors of both splits, decoded in the interleaved order, as the cache holds them."""
    first: list = []  # shared by the splits: test images must have the size of the first train image
    tensors = {"format": CACHE_FORMAT, "digest": digest, "classes": list(classes)}
    for split in SPLITS:
        order = _interleave(by_split[split], classes)
        tensors[f"{split}_images"], tensors[f"{split}_labels"] = _decode_split(source, files, order, first)
    return tensors


def _cifar10_jpeg_source(root: Path, root_source: str, download: bool) -> Path:
    """The JPEG copy's archive in ``<root>/cifar10-jpeg/``, else its extracted tree; DatasetNotFound if neither."""
    folder = root / CIFAR10_JPEG_FOLDER
    archive = folder / CIFAR10_JPEG_ARCHIVE
    if archive.is_file():
        return archive
    if all((folder / split).is_dir() for split in SPLITS):
        return folder
    raise DatasetNotFound(
        f"{CIFAR10_JPEG_WORDS} not found: missing {CIFAR10_JPEG_FOLDER}/{CIFAR10_JPEG_ARCHIVE} (or an extracted "
        f"{CIFAR10_JPEG_FOLDER}/train/ and {CIFAR10_JPEG_FOLDER}/test/) in {root}.\n"
        f"The data directory {root} comes from {root_source}.\n"
        f"There is no download source for this copy (download={download} changes nothing): it is the shared "
        f"re-encoding of CIFAR-10 as JPEG (datasets/{CIFAR10_JPEG_FOLDER}/{CIFAR10_JPEG_ARCHIVE}, content digest "
        f"{CIFAR10_JPEG_DIGEST}).\n"
        f"To fix this, put {CIFAR10_JPEG_ARCHIVE} in {folder}, or point rramk at a data directory that holds "
        f"{CIFAR10_JPEG_FOLDER}/ with {DATA_DIR_FLAG} DIR or the environment variable {DATA_ENV}=DIR; for the "
        f"official pixels use the data set cifar10 (cifar-10-python.tar.gz) instead."
    )


# --------------------------------------------------------------------------------------------
# Loaders


def load_image_folder(
    source: str | os.PathLike[str],
    *,
    name: str,
    classes: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    expected_digest: str | None = None,
    what: str | None = None,
) -> ImageDataset:
    """Load ``train/<class>/*`` and ``test/<class>/*`` from a directory or a .tar/.tar.gz (module docs).

    Args:
        source: the directory holding train/ and test/, or a tar (optionally gzip-compressed) of it.
        name: the returned data set's name (its key in :data:`~rramk.data.NORMALIZATION`).
        classes: the class names in label order; they must be exactly the class folders.
            ``None``: the folder names sorted (torchvision's ImageFolder).
        cache_dir: where decoded tensors are cached (``image-folder/`` below it); ``None``:
            :func:`default_cache_dir`.
        expected_digest: the :func:`content_digest` the images must have (``None``: not checked).
        what: the data set in words, for error messages (``None``: ``name``).

    Returns:
        an :class:`ImageDataset`: uint8 RGB images (N, 3, H, W), int64 labels, classes interleaved.

    Raises:
        DatasetNotFound: ``source`` does not exist.
        ChecksumMismatch: the content digest differs from ``expected_digest``.
        DatasetError: the layout or an image is bad (one line naming the file or folder).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    source = Path(source).expanduser()
    files, folders = read_source(source)
    by_split = {split: _class_files(source, files, folders, split) for split in SPLITS}
    classes = _label_order(source, by_split, classes)
    digest = _checked_digest(source, files, expected_digest, what or name)
    cache = _cache_path(Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir(), digest, classes)
    tensors = _read_cache(cache, digest, classes)
    if tensors is None:
        tensors = _decode_splits(source, files, by_split, classes, digest)
        _write_cache(cache, tensors)
    return ImageDataset(name, tensors["train_images"], tensors["train_labels"], tensors["test_images"],
                        tensors["test_labels"], classes)


def load_cifar10_jpeg(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    verify: bool = True,
    limit: int | None = None,
) -> ImageDataset:
    """Load the JPEG copy of CIFAR-10: ``<data dir>/cifar10-jpeg/cifar10-jpeg.tar.gz`` (or the tree extracted
    there, ``cifar10-jpeg/train/`` and ``cifar10-jpeg/test/``), verified against :data:`CIFAR10_JPEG_DIGEST`.

    These are the CIFAR-10 images re-encoded as JPEG, not the official pixels (``load_cifar10``): the data
    set is named ``"cifar10-jpeg"``, and results on it should say "CIFAR-10 (JPEG copy)".

    Args:
        data_dir: the data directory; ``None`` means ``$RRAMK_DATA`` or the cache (:func:`~rramk.data.data_dir`).
        download: accepted for the loaders' common signature; there is no download source for this copy.
        verify: check the content digest (``False``: use a modified copy anyway).
        limit: keep only the first ``limit`` training examples (the classes stay balanced).

    Returns:
        an :class:`ImageDataset` named ``"cifar10-jpeg"``: uint8 (N, 3, 32, 32), the CIFAR-10 classes.
    """
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {type(download).__name__}")
    if not isinstance(verify, bool):
        raise TypeError(f"verify must be a bool, got {type(verify).__name__}")
    _check_limit(limit)
    root, root_source = _resolve_data_dir(data_dir)
    source = _cifar10_jpeg_source(root, root_source, download)
    try:
        dataset = load_image_folder(source, name=CIFAR10_JPEG_FOLDER, classes=CIFAR10_CLASSES,
                                    expected_digest=CIFAR10_JPEG_DIGEST if verify else None, what=CIFAR10_JPEG_WORDS)
    except ChecksumMismatch as exc:
        raise ChecksumMismatch(f"{exc}; replace it with the shared copy, or pass verify=False to use it anyway"
                               ) from None
    if limit is not None:
        dataset = ImageDataset(dataset.name, dataset.train_images[:limit].clone(), dataset.train_labels[:limit].clone(),
                               dataset.test_images, dataset.test_labels, dataset.classes)
    return dataset
