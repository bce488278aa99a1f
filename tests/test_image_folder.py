"""rramk.data.image_folder: class-per-folder image trees (directory or tar), their digest, cache, order, errors.

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
    CIFAR10_CLASSES,
    CIFAR10_JPEG_DIGEST,
    NORMALIZATION,
    ChecksumMismatch,
    DatasetError,
    DatasetNotFound,
    content_digest,
    load_cifar10_jpeg,
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


# --------------------------------------------------------------------------------------------
# Bad input: one line naming the file or folder and what was expected


def test_empty_class_folder(tmp_path):
    tree = make_tree(tmp_path / "set")
    (tree / "train" / "bee").mkdir()
    (tree / "train" / "bee" / "readme.txt").write_text("no images here")
    for source in (tree, make_tar(tree, tmp_path / "set.tar.gz")):
        with pytest.raises(DatasetError) as exc:
            load_image_folder(source, name="toy")
        message = one_line(exc)
        assert "train/bee/" in message and "holds no images" in message and ".jpg" in message


def test_undecodable_file(tmp_path):
    tree = make_tree(tmp_path / "set")
    (tree / "train" / "cat" / "02.png").write_bytes(b"\x89PNG but not really")
    for source in (tree, make_tar(tree, tmp_path / "set.tar.gz")):
        with pytest.raises(DatasetError) as exc:
            load_image_folder(source, name="toy", cache_dir=tmp_path / "nocache")
        message = one_line(exc)
        assert "train/cat/02.png" in message and "could not be decoded" in message
    truncated = tree / "train" / "cat" / "02.jpg"
    write_image(truncated, pixels("cat", 2, "train"), fmt="JPEG")
    (tree / "train" / "cat" / "02.png").unlink()
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(DatasetError) as exc:
        load_image_folder(tree, name="toy")
    assert "train/cat/02.jpg" in one_line(exc)


def test_mixed_sizes(tmp_path):
    tree = make_tree(tmp_path / "set")
    write_image(tree / "test" / "dog" / "01.png", pixels("dog", 1, "test", size=(8, 6)))
    with pytest.raises(DatasetError) as exc:
        load_image_folder(tree, name="toy")
    message = one_line(exc)
    assert "test/dog/01.png is 8x6" in message and "expected 8x8" in message and "train/ant/00.png" in message


def test_train_and_test_classes_differ(tmp_path):
    tree = make_tree(tmp_path / "set", test_counts={"ant": 2, "cat": 2, "eel": 1})
    with pytest.raises(DatasetError) as exc:
        load_image_folder(tree, name="toy")
    message = one_line(exc)
    assert "only in train/: dog" in message and "only in test/: eel" in message and str(tree) in message


def test_layout_errors(tmp_path):
    tree = make_tree(tmp_path / "set")
    write_image(tree / "train" / "stray.png", pixels("ant", 0, "train"))
    with pytest.raises(DatasetError) as exc:
        load_image_folder(tree, name="toy")
    assert "train/stray.png lies directly in train/" in one_line(exc)
    (tree / "train" / "stray.png").unlink()
    with pytest.raises(DatasetError) as exc:
        load_image_folder(tree, name="toy", classes=("ant", "cat"))
    assert "expected exactly ant, cat" in one_line(exc)
    for path in (tree / "test").rglob("*.png"):
        path.unlink()
    with pytest.raises(DatasetError) as exc:
        load_image_folder(tree, name="toy")
    assert "test/ant/ holds no images" in one_line(exc)
    with pytest.raises(DatasetError) as exc:
        load_image_folder(tree / "train", name="toy")
    assert "has no train/ folder" in one_line(exc)
    with pytest.raises(DatasetNotFound):
        load_image_folder(tmp_path / "absent", name="toy")
    (tmp_path / "set.zip").write_bytes(b"PK")
    with pytest.raises(DatasetError) as exc:
        load_image_folder(tmp_path / "set.zip", name="toy")
    assert "expected a directory or a .tar" in one_line(exc)
    (tmp_path / "bad.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(DatasetError) as exc:
        load_image_folder(tmp_path / "bad.tar.gz", name="toy")
    assert "bad.tar.gz could not be read" in one_line(exc)


# --------------------------------------------------------------------------------------------
# The JPEG copy of CIFAR-10


def cifar_tree(root: Path) -> Path:
    counts = {c: 3 for c in CIFAR10_CLASSES}
    return make_tree(root, counts=counts, test_counts={c: 1 for c in CIFAR10_CLASSES}, classes=CIFAR10_CLASSES)


def test_cifar10_jpeg_not_found_says_where_and_that_nothing_downloads(tmp_path):
    with pytest.raises(DatasetNotFound) as exc:
        load_cifar10_jpeg(tmp_path, download=True)
    message = str(exc.value)
    assert str(tmp_path / "cifar10-jpeg") in message and "cifar10-jpeg.tar.gz" in message
    assert "no download source" in message and "RRAMK_DATA" in message and "--data-dir" in message


def test_cifar10_jpeg_verifies_the_digest(tmp_path, monkeypatch):
    folder = tmp_path / "cifar10-jpeg"
    tree = cifar_tree(tmp_path / "tree")
    archive = make_tar(tree, _mk(folder / "cifar10-jpeg.tar.gz"))
    digest = independent_digest(tree)
    with pytest.raises(ChecksumMismatch) as exc:
        load_cifar10_jpeg(tmp_path)
    message = one_line(exc)
    assert str(archive) in message and digest in message and CIFAR10_JPEG_DIGEST in message
    assert "verify=False" in message
    ds = load_cifar10_jpeg(tmp_path, verify=False)
    assert ds.name == "cifar10-jpeg" and ds.classes == CIFAR10_CLASSES
    assert ds.train_labels[:10].tolist() == list(range(10))  # interleaved
    monkeypatch.setattr(data, "CIFAR10_JPEG_DIGEST", digest)  # reaches image_folder through rramk.data
    limited = load_cifar10_jpeg(tmp_path, limit=20)
    assert len(limited.train_images) == 20 and sorted(limited.train_labels.tolist()) == sorted(list(range(10)) * 2)
    assert torch.equal(limited.train_images, ds.train_images[:20])
    # an extracted tree serves when the archive is absent
    archive.unlink()
    os.rename(tree / "train", folder / "train")
    os.rename(tree / "test", folder / "test")
    assert torch.equal(load_cifar10_jpeg(tmp_path).test_images, ds.test_images)
    monkeypatch.setenv("RRAMK_DATA", str(tmp_path))
    assert torch.equal(load_cifar10_jpeg().train_labels, ds.train_labels)


def test_trainer_knows_cifar10_jpeg():
    from rramk.studies.runner import SHORT_BUDGET
    from rramk.training.run_settings import DATASETS, RunSettings

    recipe, official = DATASETS["cifar10-jpeg"], DATASETS["cifar10"]
    assert recipe.loader == "load_cifar10_jpeg" and callable(getattr(data, recipe.loader))
    assert recipe.published == official.published and recipe.augment == official.augment
    assert list(recipe.networks) == list(official.networks)
    assert SHORT_BUDGET["cifar10-jpeg"] == SHORT_BUDGET["cifar10"]
    settings = RunSettings("cifar10-jpeg")
    assert settings.dataset == "cifar10-jpeg" and "cifar10-jpeg" in settings.out
    assert len(NORMALIZATION["cifar10-jpeg"][0]) == 3


@pytest.mark.slow
@pytest.mark.skipif(not REAL_TAR.is_file(), reason=f"the shared JPEG copy is not at {REAL_TAR}")
def test_the_shared_jpeg_copy(tmp_path):
    ds = load_cifar10_jpeg(REAL_DATA)  # verifies CIFAR10_JPEG_DIGEST
    assert ds.name == "cifar10-jpeg" and ds.classes == CIFAR10_CLASSES
    assert ds.train_images.shape == (50_000, 3, 32, 32) and ds.test_images.shape == (10_000, 3, 32, 32)
    assert torch.bincount(ds.train_labels, minlength=10).tolist() == [5_000] * 10
    assert torch.bincount(ds.test_labels, minlength=10).tolist() == [1_000] * 10
    (_, _), (_, val_labels) = validation_split(ds.train_images, ds.train_labels, 5_000)
    assert torch.bincount(val_labels, minlength=10).tolist() == [500] * 10
    # the channel statistics of the training pixels, exactly, from per-channel histograms
    counts = np.zeros((3, 256))
    for start in range(0, len(ds.train_images), 5_000):
        chunk = ds.train_images[start:start + 5_000].numpy()
        for c in range(3):
            counts[c] += np.bincount(chunk[:, c].ravel(), minlength=256)
    values = np.arange(256) / 255.0
    mean = (counts * values).sum(1) / counts.sum(1)
    std = np.sqrt((counts * (values - mean[:, None]) ** 2).sum(1) / counts.sum(1))
    readme = ((0.4913, 0.4821, 0.4465), (0.2452, 0.2428, 0.2606))
    assert np.allclose(mean, readme[0], atol=1e-4) and np.allclose(std, readme[1], atol=1e-4), (mean, std)
    assert NORMALIZATION["cifar10-jpeg"] == readme
    # a second load comes from the cache and is the same
    again = load_cifar10_jpeg(REAL_DATA)
    assert torch.equal(again.train_images, ds.train_images) and torch.equal(again.test_labels, ds.test_labels)
