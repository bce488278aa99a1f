"""The data directory, checksums, downloads and the errors every loader raises.

One data directory holds every data set. It is, in order of precedence, the ``data_dir``
argument (the command line's ``--data-dir``), the environment variable ``RRAMK_DATA``, or the
per-user cache ``$XDG_CACHE_HOME/rramk`` (``~/.cache/rramk`` when XDG_CACHE_HOME is unset).

Missing files are downloaded from the official sources when ``download=True`` and the network
allows (atomically: a temporary file in the same directory, checked, then renamed). Otherwise
:class:`DatasetNotFound` says which files to put where and where to fetch them.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from tqdm import tqdm

__all__ = [
    "DATA_DIR_FLAG",
    "DATA_ENV",
    "DOWNLOAD_TIMEOUT_S",
    "ChecksumMismatch",
    "DatasetError",
    "DatasetNotFound",
    "data_dir",
]

DATA_ENV = "RRAMK_DATA"
"""Environment variable naming the data directory (below an explicit ``data_dir``)."""

DATA_DIR_FLAG = "--data-dir"
"""The command-line flag the scripts use for the data directory (quoted in error messages)."""

DOWNLOAD_TIMEOUT_S = 10.0
"""Default socket timeout of a download, in seconds."""


# --------------------------------------------------------------------------------------------
# Errors


class DatasetNotFound(FileNotFoundError):
    """Files of a data set are missing and could not be downloaded; the message says what to do."""


class DatasetError(ValueError):
    """A data file is present but unusable (malformed, truncated); the message names the file."""


class ChecksumMismatch(DatasetError):
    """A data file's MD5 differs from the expected one; the message says how to fix it."""


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
# Checksums


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


def _fix_hint(source: str) -> str:
    """What to do about a file that fails its checksum (the tail of every such message)."""
    return (
        f"The file is corrupt or not the official one: delete it and run again to re-download it (or "
        f"fetch it yourself from {source}); pass verify=False to use it anyway."
    )


def _verify(path: Path, table: Mapping[str, str], dataset: str, source: str) -> None:
    """Check ``path`` against ``table[path.name]`` (files not in the table are not checked)."""
    expected = table.get(path.name)
    if expected is None:
        return
    actual = _md5(path)
    if actual != expected.lower():
        raise ChecksumMismatch(
            f"{dataset} file {path} has MD5 {actual}, expected {expected.lower()}. {_fix_hint(source)}"
        )


# --------------------------------------------------------------------------------------------
# Downloads

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


# --------------------------------------------------------------------------------------------
# Argument checks shared by the loaders


def _check_download_args(download: bool, timeout: float) -> None:
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {type(download).__name__}")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be None or a positive int (number of training examples), got {limit!r}")
