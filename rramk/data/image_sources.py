"""An image folder's source, a directory or a ``.tar`` / ``.tar.gz`` / ``.tgz`` of one (read as a stream, never
extracted): the bytes of its images under ``train/`` and ``test/`` by path relative to the root, the folders
seen, and their content digest (the SHA-256 of the sorted lines ``path NUL sha256(file) LF``: the same tree as
a directory or as a tar has the same digest). Images are the files ending in :data:`IMAGE_EXTENSIONS`; names
starting with a dot are ignored; a tar whose splits lie in one top-level folder is read from that folder.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from .files import DatasetError, DatasetNotFound

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
"""The file name endings read as images (torchvision's ``IMG_EXTENSIONS``), compared case-insensitively."""

SPLITS = ("train", "test")


def is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _is_tar(path: Path) -> bool:
    return path.name.lower().endswith((".tar", ".tar.gz", ".tgz"))


def _read_directory(root: Path) -> tuple[dict[str, bytes], set[str]]:
    files: dict[str, bytes] = {}
    folders: set[str] = set()
    for split in SPLITS:
        top = root / split
        if not top.is_dir():
            continue
        folders.add(split)
        for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(root).as_posix()
            folders.add(rel)
            for name in filenames:
                if is_image(name):
                    files[f"{rel}/{name}"] = (Path(dirpath) / name).read_bytes()
    return files, folders


def _read_tar(path: Path) -> tuple[dict[str, bytes], set[str]]:
    files: dict[str, bytes] = {}
    folders: set[str] = set()
    with tarfile.open(path, "r:*") as tar:  # a stream of members: nothing is written to disk
        for member in tar:
            parts = [p for p in PurePosixPath(member.name).parts if p not in ("", ".", "/")]
            if not parts or ".." in parts or any(p.startswith(".") for p in parts[:-1]):
                continue
            name = "/".join(parts)
            if member.isdir():
                folders.add(name)
            elif member.isfile() and is_image(parts[-1]):
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                files[name] = source.read()
                folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    if not any(p.split("/", 1)[0] in SPLITS for p in folders):
        # train/ and test/ inside one top-level folder: read that folder as the root
        tops = {p.split("/", 1)[0] for p in folders | set(files)}
        if len(tops) == 1:
            top = tops.pop() + "/"
            files = {k[len(top):]: v for k, v in files.items()}
            folders = {p[len(top):] for p in folders if p.startswith(top)}
    return files, folders


def read_source(source: Path) -> tuple[dict[str, bytes], set[str]]:
    """{path: bytes} of the images under train/ and test/, and every folder seen (relative paths)."""
    try:
        if source.is_dir():
            files, folders = _read_directory(source)
        elif source.is_file() and _is_tar(source):
            files, folders = _read_tar(source)
        elif source.exists():
            raise DatasetError(f"image folder source {source}: expected a directory or a .tar/.tar.gz of one")
        else:
            raise DatasetNotFound(f"image folder source {source} does not exist (expected a directory or a "
                                  f".tar/.tar.gz)")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        if isinstance(exc, DatasetNotFound):
            raise
        why = " ".join(str(exc).split())  # tarfile's reasons span lines
        raise DatasetError(f"image folder source {source} could not be read ({type(exc).__name__}: {why}), expected "
                           f"a readable directory or .tar/.tar.gz of train/<class>/<image> and test/<class>/<image>"
                           ) from exc
    return {k: v for k, v in files.items() if k.split("/", 1)[0] in SPLITS}, folders


def content_digest(files: dict[str, bytes]) -> str:
    """SHA-256 of the sorted lines ``path NUL sha256(bytes) LF`` (hex digests, paths relative to the root)."""
    lines = sorted(f"{path}\0{hashlib.sha256(data).hexdigest()}\n" for path, data in files.items())
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()
