"""rramk.data.image_folder on bad input: one line naming the file or folder and what was expected
(tiny trees from tests/test_image_folder.py)."""

from __future__ import annotations

import pytest

from rramk.data import DatasetError, DatasetNotFound, load_image_folder
from tests.test_image_folder import _isolated  # noqa: F401  (autouse: no RRAMK_DATA, a cache of the test's own)
from tests.test_image_folder import make_tar, make_tree, one_line, pixels, write_image


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
