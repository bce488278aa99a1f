"""The IDX file format of MNIST and Fashion-MNIST: one file's checksum, header and bytes.

IDX (LeCun and Cortes) is a big-endian header, then the raw bytes::

    images: int32 magic 2051 (0x00000803: ubyte, 3 dims), int32 N, int32 rows (28),
            int32 cols (28), then N * rows * cols uint8 pixels, row-major
    labels: int32 magic 2049 (0x00000801: ubyte, 1 dim), int32 N, then N uint8 labels 0..9

Checksums: a ``.gz`` file passes when its own MD5 is the expected one, or when the MD5 of its
decompressed content is. The content does not depend on how the file was gzipped: Debian's
Fashion-MNIST, for one, has a rewritten gzip header, so its ``.gz`` MD5s are not the official
ones though every image is. An uncompressed file is checked against the content's MD5.
Which files make a data set, and where they come from: :mod:`.idx`.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .files import ChecksumMismatch, DatasetError, _fix_hint

MNIST_IMAGE_MAGIC = 2051
MNIST_LABEL_MAGIC = 2049


def _gunzip(raw: bytes, path: Path, dataset: str) -> bytes:
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DatasetError(
            f"{dataset} file {path} is not a valid gzip file ({type(exc).__name__}: {exc}): "
            f"delete it and re-download it"
        ) from exc


def _check_idx(path: Path, raw: bytes, table: Mapping[str, str], dataset: str, source: str) -> bytes | None:
    """Check ``raw``, the bytes of ``path``, against ``table``; returns the content when it unzipped it.

    A ``.gz`` file passes with its own MD5 (``table[<name>.gz]``) or with its decompressed
    content's (``table[<name>]``); an uncompressed file with ``table[<name>]``. A file with
    neither name in the table is not checked.
    """
    gz = path.suffix == ".gz"
    expected_file = table.get(path.name)
    expected_content = table.get(path.name[: -len(".gz")]) if gz else None
    if expected_file is None and expected_content is None:
        return None
    actual = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    if expected_file is not None and actual == expected_file.lower():
        return None
    problem = f"{dataset} file {path}"
    if expected_file is not None:
        problem += f" has MD5 {actual}, expected {expected_file.lower()}"
    if expected_content is not None:
        problem += "; " if expected_file is not None else ": "
        try:
            content = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            problem += (
                f"it is not a valid gzip file ({type(exc).__name__}: {exc}), so its content cannot be "
                f"checked against the expected content MD5 {expected_content.lower()} either"
            )
        else:
            content_md5 = hashlib.md5(content, usedforsecurity=False).hexdigest()
            if content_md5 == expected_content.lower():
                return content
            problem += f"its decompressed content has MD5 {content_md5}, expected {expected_content.lower()}"
            if expected_file is not None:
                problem += " (either match will do)"
    raise ChecksumMismatch(f"{problem}. {_fix_hint(source)}")


def _parse_idx(path: Path, raw: bytes, magic: int, dataset: str) -> np.ndarray:
    """Parse the uncompressed content ``raw`` of one IDX file with the expected ``magic``; uint8."""
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
