"""rramk.data.image_folder: class-per-folder image trees (directory or tar), their digest, cache, order
(bad input: tests/test_image_folder_errors.py; the JPEG copy of CIFAR-10: tests/test_image_folder_cifar10_jpeg.py).

Tiny trees are written here with Pillow (lossless PNG, so each image's pixels are known exactly:
image k of a class is filled with a value that names its class and k). The content digest is
checked against an independent computation with hashlib. The real shared JPEG copy of CIFAR-10 is
loaded only by the slow test, when it is present.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import rramk.data as data
from rramk.data import (
    ChecksumMismatch,
    content_digest,
    load_image_folder,
    validation_split,
)
from rramk.data import image_folder


REPO_ROOT = Path(__file__).resolve().parents[1]
# Read at import, before the autouse fixture below clears RRAMK_DATA.
REAL_DATA = Path(os.environ.get("RRAMK_DATA") or REPO_ROOT.parent / "shared" / "datasets")
REAL_TAR = REAL_DATA / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"

CLASSES = ("dog", "ant", "cat")  # written in this order; the labels are alphabetical: ant 0, cat 1, dog 2


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No RRAMK_DATA from the environment, and a cache of the test's own."""
    monkeypatch.delenv("RRAMK_DATA", raising=False)
    monkeypatch.setenv("RRAMK_CACHE_DIR", str(tmp_path / "cache"))


def pixels(label_name: str, k: int, split: str, size=(8, 8)) -> np.ndarray:
    """The (H, W, 3) uint8 image k of a class: a value per channel naming split, class and k, plus a gradient."""
    c = sorted(CLASSES).index(label_name) if label_name in CLASSES else 7
    w, h = size
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[..., 0] = 10 * c + k + (100 if split == "test" else 0)
    img[..., 1] = np.arange(w, dtype=np.uint8)[None, :]
    img[..., 2] = np.arange(h, dtype=np.uint8)[:, None] + 3 * k
    return img


def write_image(path: Path, img: np.ndarray, fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img, "RGB").save(path, format=fmt)


def make_tree(root: Path, counts=None, test_counts=None, classes=CLASSES) -> Path:
    """train/<class>/NN.png and test/<class>/NN.png; ``counts``: images per class (default 4 train, 2 test)."""
    counts = counts or {c: 4 for c in classes}
    test_counts = test_counts or {c: 2 for c in classes}
    for split, per_class in (("train", counts), ("test", test_counts)):
        for name, n in per_class.items():
            for k in range(n):
                write_image(root / split / name / f"{k:02d}.png", pixels(name, k, split))
    return root


def make_tar(tree: Path, dest: Path, mode: str = "w:gz", arcname: str = "") -> Path:
    with tarfile.open(dest, mode) as tar:
        for split in ("train", "test"):
            tar.add(tree / split, arcname=f"{arcname}/{split}" if arcname else split)
    return dest


def independent_digest(root: Path) -> str:
    """SHA-256 of the sorted lines 'path NUL sha256(file) LF', as datasets/README.md defines it."""
    lines = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            lines.append(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).hexdigest().encode() + b"\n")
    return hashlib.sha256(b"".join(sorted(lines))).hexdigest()


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


# --------------------------------------------------------------------------------------------
# Reading, labels, sources


def test_directory_labels_and_pixels(tmp_path):
    tree = make_tree(tmp_path / "set")
    ds = load_image_folder(tree, name="toy")
    assert ds.name == "toy" and ds.classes == ("ant", "cat", "dog")
    assert ds.train_images.dtype == torch.uint8 and ds.train_images.shape == (12, 3, 8, 8)
    assert ds.test_images.shape == (6, 3, 8, 8) and ds.train_labels.dtype == torch.int64
    for split, images, labels, n in (("train", ds.train_images, ds.train_labels, 4),
                                     ("test", ds.test_images, ds.test_labels, 2)):
        assert sorted(labels.tolist()) == sorted([0, 1, 2] * n)
        seen = set()
        for image, label in zip(images, labels.tolist()):
            name = ds.classes[label]
            k = int(image[0, 0, 0]) - 10 * label - (100 if split == "test" else 0)
            assert 0 <= k < n
            assert torch.equal(image, torch.from_numpy(pixels(name, k, split)).permute(2, 0, 1))
            seen.add((name, k))
        assert len(seen) == 3 * n


def test_directory_tar_gz_plain_tar_and_wrapped_tar_are_identical(tmp_path):
    tree = make_tree(tmp_path / "set")
    loads = [load_image_folder(tree, name="toy", cache_dir=tmp_path / "c0")]
    for i, (mode, suffix, arcname) in enumerate((("w:gz", ".tar.gz", ""), ("w", ".tar", ""), ("w:gz", ".tgz", "set"))):
        archive = make_tar(tree, tmp_path / f"set{i}{suffix}", mode, arcname)
        loads.append(load_image_folder(archive, name="toy", cache_dir=tmp_path / f"c{i + 1}"))
    first = loads[0]
    for ds in loads[1:]:
        assert ds.classes == first.classes
        for field in ("train_images", "train_labels", "test_images", "test_labels"):
            assert torch.equal(getattr(ds, field), getattr(first, field)), field
    # the same digest, hence the same cache file name, whatever the container
    names = {p.name for i in range(4) for p in (tmp_path / f"c{i}" / "image-folder").glob("*.pt")}
    assert len(names) == 1


def test_classes_argument_gives_the_label_order(tmp_path):
    tree = make_tree(tmp_path / "set")
    ds = load_image_folder(tree, name="toy", classes=("dog", "cat", "ant"))
    assert ds.classes == ("dog", "cat", "ant")
    for image, label in zip(ds.train_images, ds.train_labels.tolist()):  # channel 0 encodes the alphabetical class
        assert ds.classes[label] == sorted(CLASSES)[int(image[0, 0, 0]) // 10]


def test_grey_and_jpeg_images_become_rgb_and_other_files_are_ignored(tmp_path):
    root = tmp_path / "set"
    for split in ("train", "test"):
        Image.fromarray(np.full((8, 8), 77, np.uint8), "L").save(_mk(root / split / "a" / "0.png"))
        write_image(root / split / "b" / "0.JPG", pixels("cat", 0, split), fmt="JPEG")
        (root / split / "b" / "notes.txt").write_text("not an image")
        (root / split / "b" / ".hidden.png").write_bytes(b"junk")
    ds = load_image_folder(root, name="toy")
    assert ds.train_images.shape == (2, 3, 8, 8) and ds.classes == ("a", "b")
    grey = ds.train_images[ds.train_labels == 0][0]
    assert (grey == 77).all()


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------------------------
# Order: fixed, classes interleaved, a balanced validation tail


def test_equal_classes_interleave_as_k_times_C_plus_c(tmp_path):
    ds = load_image_folder(make_tree(tmp_path / "set"), name="toy")
    c_count = len(CLASSES)
    for i, (image, label) in enumerate(zip(ds.train_images, ds.train_labels.tolist())):
        k, c = divmod(i, c_count)
        assert label == c
        assert image[0, 0, 0] == 10 * c + k  # image k (by file name) of class c
    (_, _), (_, val_labels) = validation_split(ds.train_images, ds.train_labels, 6)
    assert sorted(val_labels.tolist()) == [0, 0, 1, 1, 2, 2]


def test_unequal_classes_every_tail_and_head_is_proportional(tmp_path):
    counts = {"dog": 6, "ant": 2, "cat": 4}
    ds = load_image_folder(make_tree(tmp_path / "set", counts=counts), name="toy")
    labels = ds.train_labels.tolist()
    sizes = [counts[name] for name in ds.classes]
    total = sum(sizes)
    for n in range(1, total + 1):
        for part in (labels[-n:], labels[:n]):
            for c, size in enumerate(sizes):
                assert abs(part.count(c) - n * size / total) <= 1, (n, c, part)
    for c in range(3):  # within a class, by file name
        ks = [int(img[0, 0, 0]) - 10 * c for img, l in zip(ds.train_images, labels) if l == c]
        assert ks == sorted(ks)
    # the order is fixed: a second tree with the same names, written in another order, loads the same
    again = load_image_folder(make_tree(tmp_path / "again", counts=dict(reversed(counts.items()))), name="toy")
    assert torch.equal(again.train_images, ds.train_images) and torch.equal(again.train_labels, ds.train_labels)


# --------------------------------------------------------------------------------------------
# Digest


def test_content_digest_matches_an_independent_computation(tmp_path):
    tree = make_tree(tmp_path / "set")
    expected = independent_digest(tree)
    files = {p.relative_to(tree).as_posix(): p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    assert content_digest(files) == expected
    load_image_folder(tree, name="toy", expected_digest=expected)  # passes
    load_image_folder(make_tar(tree, tmp_path / "set.tar.gz"), name="toy", expected_digest=expected.upper())
    wrong = "0" * 64
    with pytest.raises(ChecksumMismatch) as exc:
        load_image_folder(tree, name="toy", expected_digest=wrong)
    message = one_line(exc)
    assert str(tree) in message and expected in message and wrong in message


def test_digest_of_the_readme_example_format():
    # one file: the line is b"train/a/x.png\0" + hex sha256 + b"\n"
    line = b"train/a/x.png\0" + hashlib.sha256(b"abc").hexdigest().encode() + b"\n"
    assert content_digest({"train/a/x.png": b"abc"}) == hashlib.sha256(line).hexdigest()


# --------------------------------------------------------------------------------------------
# Cache


def test_second_load_reads_the_cache_without_decoding(tmp_path, monkeypatch):
    tree = make_tree(tmp_path / "set")
    first = load_image_folder(tree, name="toy")
    cached = list((tmp_path / "cache" / "image-folder").glob("*.pt"))
    assert len(cached) == 1 and cached[0].name.startswith(independent_digest(tree))
    assert not [p for p in cached[0].parent.iterdir() if p.name.startswith(".")]  # no temporary file left

    def no_decoding(data, path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(image_folder, "_decode", no_decoding)
    second = load_image_folder(make_tar(tree, tmp_path / "set.tar.gz"), name="toy")
    for field in ("train_images", "train_labels", "test_images", "test_labels"):
        assert torch.equal(getattr(second, field), getattr(first, field))
    # another label order is another cache entry: it decodes
    with pytest.raises(AssertionError, match="decoded"):
        load_image_folder(tree, name="toy", classes=("dog", "cat", "ant"))
    # changed content is another digest: it decodes
    write_image(tree / "train" / "ant" / "00.png", pixels("ant", 3, "train"))
    with pytest.raises(AssertionError, match="decoded"):
        load_image_folder(tree, name="toy")


def test_a_corrupt_cache_file_is_rebuilt(tmp_path):
    tree = make_tree(tmp_path / "set")
    first = load_image_folder(tree, name="toy")
    (cached,) = (tmp_path / "cache" / "image-folder").glob("*.pt")
    cached.write_bytes(b"truncated")
    second = load_image_folder(tree, name="toy")
    assert torch.equal(second.train_images, first.train_images)
    assert cached.stat().st_size > 1000


def test_cache_dir_argument_and_environment(tmp_path, monkeypatch):
    tree = make_tree(tmp_path / "set")
    load_image_folder(tree, name="toy", cache_dir=tmp_path / "mine")
    assert len(list((tmp_path / "mine" / "image-folder").glob("*.pt"))) == 1
    monkeypatch.delenv("RRAMK_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_cache_dir() == tmp_path / "xdg" / "rramk"
