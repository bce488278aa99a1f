"""MNIST, Fashion-MNIST and CIFAR-10 in their official formats, and image folders, verified, as in-memory uint8 tensors.

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
        fashion-mnist/                   (the same four names)
        cifar-10-python.tar.gz           (the official archive, extracted on first use)
        cifar-10-batches-py/             (the official extracted folder)
            data_batch_1 ... data_batch_5, test_batch

Missing files are downloaded from the official sources when ``download=True`` and the network
allows; otherwise :class:`DatasetNotFound` says which files to put where and where to fetch them.
Files whose names appear in the checksum table (by default the official MD5s:
:data:`MNIST_MD5`, :data:`FASHION_MNIST_MD5`, :data:`CIFAR10_MD5`) are verified;
``verify=False`` skips the check and ``checksums={...}`` replaces the table (tests use it for
their tiny files).

Images are returned as uint8 tensors, (N, 1, 28, 28) for MNIST and Fashion-MNIST and
(N, 3, 32, 32) for CIFAR-10, labels as int64 (:class:`ImageDataset`). :func:`normalize` turns
images into the usual standardized float32 and :func:`augment_cifar10` applies random crop and
flip to a whole batch at once, on whatever device the batch lives.

Image folders (torchvision's ImageFolder layout, ``train/<class>/*`` and ``test/<class>/*``, as a
directory or a .tar/.tar.gz) load with :func:`load_image_folder`, decoded once and cached by content
digest; the JPEG copy of CIFAR-10 (``<data dir>/cifar10-jpeg/cifar10-jpeg.tar.gz``, data set
``"cifar10-jpeg"``, not the official pixels) with :func:`load_cifar10_jpeg`.

Modules: :mod:`.files` (data directory, checksums, downloads, errors), :mod:`.dataset`
(:class:`ImageDataset`, :func:`normalize`), :mod:`.idx` (MNIST and Fashion-MNIST),
:mod:`.cifar10` (CIFAR-10 and its augmentation), :mod:`.image_folder` (image folders, the JPEG copy).
"""

from __future__ import annotations

import sys
import types

from . import cifar10, dataset, files, idx, image_folder
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
    MNIST_IMAGE_MAGIC,
    MNIST_LABEL_MAGIC,
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

_SUBMODULES = (files, dataset, idx, cifar10, image_folder)
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
