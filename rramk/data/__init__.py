"""MNIST, Fashion-MNIST and CIFAR-10 in their official formats, and image folders, verified, as in-memory uint8 tensors.

One data directory holds every data set: the ``data_dir`` argument (``--data-dir``), else
``$RRAMK_DATA``, else ``$XDG_CACHE_HOME/rramk`` (``~/.cache/rramk``). In it: ``mnist/`` and
``fashion-mnist/`` (the four official IDX files: :mod:`.idx`), ``cifar-10-python.tar.gz`` or
``cifar-10-batches-py/`` (:mod:`.cifar10`), and the JPEG copy of CIFAR-10 (data set ``"cifar10-jpeg"``,
not the official pixels) ``cifar10-jpeg/cifar10-jpeg.tar.gz``. Missing files are downloaded when
``download=True`` and the network allows, else :class:`DatasetNotFound` says which files to put where;
files in the checksum table (the official MD5s, :data:`MNIST_MD5`, ...) are verified (``verify=False``
skips it, ``checksums={...}`` replaces it). Images are uint8 (N, 1, 28, 28) or (N, 3, 32, 32), labels
int64 (:class:`ImageDataset`); :func:`normalize` standardizes to float32, :func:`augment_cifar10` crops
and flips a batch on its device; :func:`load_image_folder` reads class-per-folder trees,
:func:`load_cifar10_jpeg` the JPEG copy. Modules: :mod:`.files` (directory, checksums, downloads,
errors), :mod:`.dataset`, :mod:`.idx`, :mod:`.idx_format`, :mod:`.cifar10`, :mod:`.image_folder`.
"""

from __future__ import annotations

import sys
import types

from . import cifar10, dataset, files, idx, idx_format, image_folder
from .cifar10 import (
    CIFAR10_ARCHIVE,
    CIFAR10_BATCHES,
    CIFAR10_CLASSES,
    CIFAR10_FOLDER,
    CIFAR10_MD5,
    CIFAR10_ROW,
    CIFAR10_SIDE,
    CIFAR10_TEST_BATCH,
    CIFAR10_TRAIN_BATCHES,
    CIFAR10_URL,
    augment_cifar10,
    normalized_black,
    load_cifar10,
)
from .dataset import NORMALIZATION, ImageDataset, normalize, validation_split
from .files import (
    DATA_DIR_FLAG,
    DATA_ENV,
    DOWNLOAD_TIMEOUT_S,
    ChecksumMismatch,
    DatasetError,
    DatasetNotFound,
    _download,
    _urlopen,
    data_dir,
)
from .image_folder import (
    CIFAR10_JPEG_DIGEST,
    default_cache_dir,
    load_cifar10_jpeg,
    load_image_folder,
)
from .image_sources import IMAGE_EXTENSIONS, content_digest
from .idx import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_FOLDER,
    FASHION_MNIST_MD5,
    FASHION_MNIST_URLS,
    MNIST_CLASSES,
    MNIST_FILES,
    MNIST_FOLDER,
    MNIST_MD5,
    MNIST_SIDE,
    MNIST_TEST_IMAGES,
    MNIST_TEST_LABELS,
    MNIST_TRAIN_IMAGES,
    MNIST_TRAIN_LABELS,
    MNIST_URLS,
    IdxDataset,
    load_fashion_mnist,
    load_mnist,
)
from .idx_format import MNIST_IMAGE_MAGIC, MNIST_LABEL_MAGIC

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_JPEG_DIGEST",
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "DATA_ENV",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MD5",
    "FASHION_MNIST_URLS",
    "IMAGE_EXTENSIONS",
    "MNIST_CLASSES",
    "MNIST_MD5",
    "MNIST_URLS",
    "NORMALIZATION",
    "ChecksumMismatch",
    "DatasetError",
    "DatasetNotFound",
    "ImageDataset",
    "augment_cifar10",
    "normalized_black",
    "content_digest",
    "data_dir",
    "default_cache_dir",
    "load_cifar10",
    "load_cifar10_jpeg",
    "load_fashion_mnist",
    "load_image_folder",
    "load_mnist",
    "normalize",
    "validation_split",
]

_SUBMODULES = (files, dataset, idx, idx_format, cifar10, image_folder)
_ABSENT = object()


class _Package(types.ModuleType):
    """``rramk.data``, whose attributes, when set, are rebound in the submodules that share them.

    The code lives in submodules, but callers (tests above all) set the names they know on the
    package: ``monkeypatch.setattr(rramk.data, "_urlopen", offline)`` or ``CIFAR10_MD5``. So
    that such a patch reaches the code that reads the name, and its undo too, setting a name
    here also sets it in every submodule that holds the same object under that name.
    """

    def __setattr__(self, name: str, value: object) -> None:
        current = self.__dict__.get(name, _ABSENT)
        if current is not _ABSENT and not name.startswith("__"):
            for module in _SUBMODULES:
                if module.__dict__.get(name, _ABSENT) is current:
                    setattr(module, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
