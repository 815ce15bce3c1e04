import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgekit.core.errors import EdgekitError
from edgekit.data import ImageSet, Preprocessing, find_images, labelled_images

GRAY = Preprocessing(input_size=(16, 16), channels=1, mean=(0.5,), std=(0.5,))


def _png(path, value=128, size=(20, 10), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def test_image_folder_tree_gets_sorted_class_labels(tmp_path):
    _png(tmp_path / "b" / "1.png")
    _png(tmp_path / "a" / "1.png")
    _png(tmp_path / "a" / "2.pgm")
    images = find_images(tmp_path)
    assert images.classes == ["a", "b"]
    assert images.labels == [0, 0, 1]


def test_flat_folder_has_no_labels_and_ignores_other_files(tmp_path):
    _png(tmp_path / "x.png")
    (tmp_path / "README.txt").write_text("notes")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    images = find_images(tmp_path)
    assert len(images) == 1 and images.labels is None and images.skipped_non_images == 2
    with pytest.raises(EdgekitError, match="ImageFolder tree"):
        labelled_images(tmp_path)


@pytest.mark.parametrize("setup,message", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "has no images"),
    (lambda p: (p.mkdir(), (p / "a.txt").write_text("x")), r"has no images \(1 non-image files ignored\)"),
])
def test_unusable_folders_are_clear_errors(tmp_path, setup, message):
    folder = tmp_path / "calib"
    setup(folder)
    with pytest.raises(EdgekitError, match=message):
        find_images(folder)


def test_undecodable_image_names_the_file(tmp_path):
    _png(tmp_path / "ok.png")
    (tmp_path / "broken.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(EdgekitError, match="broken.jpg"):
        find_images(tmp_path).load(GRAY)


def test_subset_is_deterministic_and_hash_tracks_content(tmp_path):
    for i in range(20):
        _png(tmp_path / f"{i:02d}.png", value=i)
    images = find_images(tmp_path)
    first, second = images.subset(5), images.subset(5)
    assert first.files == second.files and len(first) == 5
    before = first.content_sha256()
    _png(first.files[0], value=250)
    assert first.content_sha256() != before


def test_preprocessing_resizes_and_normalises(tmp_path):
    _png(tmp_path / "white.png", value=255, size=(40, 30))
    array = GRAY.load(tmp_path / "white.png")
    assert array.shape == (1, 16, 16) and array.dtype == np.float32
    np.testing.assert_allclose(array, 1.0)  # (1 - 0.5) / 0.5
    rgb = Preprocessing(input_size=(8, 8), channels=3, mean=(0, 0, 0), std=(1, 1, 1), resize=10)
    assert rgb.load(tmp_path / "white.png").shape == (3, 8, 8)  # grayscale file promoted to RGB


def test_preprocessing_round_trips_through_the_manifest_dict():
    rgb = Preprocessing(input_size=(224, 224), channels=3, mean=(0.1, 0.2, 0.3), std=(1, 2, 3), resize=256)
    assert Preprocessing.from_dict(rgb.to_dict()) == rgb


FACES = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "att_faces"


@pytest.mark.slow
@pytest.mark.skipif(not FACES.is_dir(), reason="../shared/datasets/att_faces is absent (it is on CI and dev machines)")
def test_real_pgm_faces_load_as_a_40_class_image_folder():
    images = labelled_images(FACES)
    assert len(images.classes) == 40 and len(images) == 400
    batch = images.subset(12).load(Preprocessing(input_size=(32, 32), channels=1, mean=(0.5,), std=(0.25,)))
    assert batch.shape == (12, 1, 32, 32) and np.isfinite(batch).all() and batch.std() > 0.1


def test_split_per_class_is_stratified_disjoint_and_deterministic(tmp_path):
    from edgekit.data import split_per_class

    for label in "ab":
        for i in range(10):
            _png(tmp_path / label / f"{i}.png", value=i)
    images = find_images(tmp_path)
    train, val = split_per_class(images, val_fraction=0.2)
    assert len(train) == 16 and len(val) == 4 and val.labels.count(0) == 2
    assert not set(train.files) & set(val.files)
    assert split_per_class(images, val_fraction=0.2)[1].files == val.files


def test_derived_edge_channel_follows_the_colour_channels(tmp_path):
    image = np.zeros((16, 16), dtype=np.uint8)
    image[:, 8:] = 255  # one vertical edge
    Image.fromarray(image).save(tmp_path / "edge.png")
    pre = Preprocessing(input_size=(16, 16), channels=1, mean=(0, 0), std=(1, 1), derived=("edges",))
    array = pre.load(tmp_path / "edge.png")
    assert array.shape == (2, 16, 16) and pre.input_shape == (1, 2, 16, 16)
    assert array[1, :, 7:9].min() > 0.5 and array[1, :, :6].max() == 0  # strong only at the edge
    assert Preprocessing.from_dict(pre.to_dict()) == pre


# --- class folders define the labels --------------------------------------------------------------

@pytest.mark.parametrize("fill_b", [
    lambda b: b.mkdir(),                                           # empty class folder
    lambda b: (b.mkdir(), (b / "notes.txt").write_text("x")),      # only non-image files
    lambda b: (b.mkdir(), (b / ".hidden.png").write_bytes(b"x")),  # only hidden files
])
def test_empty_class_folder_keeps_its_index_and_is_an_error_where_labels_count(tmp_path, fill_b):
    _png(tmp_path / "a" / "1.png")
    fill_b(tmp_path / "b")
    _png(tmp_path / "c" / "1.png")
    calibration = find_images(tmp_path)  # labels unused: fine
    assert calibration.classes == ["a", "b", "c"] and calibration.labels == [0, 2]
    assert calibration.empty_classes == ["b"]
    for call in (lambda: labelled_images(tmp_path), lambda: find_images(tmp_path, purpose="training data")):
        with pytest.raises(EdgekitError, match=r"class folder 'b' in .* has no images") as caught:
            call()
        assert "\n" not in caught.value.one_line()


def test_several_empty_class_folders_are_all_named(tmp_path):
    _png(tmp_path / "b" / "1.png")
    (tmp_path / "a").mkdir()
    (tmp_path / "c").mkdir()
    with pytest.raises(EdgekitError, match=r"class folders 'a', 'c' in .* have no images"):
        labelled_images(tmp_path)


def test_hidden_entries_are_not_classes_and_are_counted(tmp_path):
    _png(tmp_path / "a" / "1.png")
    _png(tmp_path / "a" / ".ipynb_checkpoints" / "1.png")
    _png(tmp_path / ".git" / "x.png")
    (tmp_path / "labels.csv").write_text("a")
    images = labelled_images(tmp_path)
    assert images.classes == ["a"] and images.files == [tmp_path / "a" / "1.png"]
    assert images.skipped_non_images == 3  # .git/, labels.csv, a/.ipynb_checkpoints/


def test_top_level_images_make_a_flat_set_even_with_sub_folders(tmp_path):
    _png(tmp_path / "top.png")
    _png(tmp_path / "sub" / "1.png")
    images = find_images(tmp_path)
    assert images.labels is None and len(images) == 2
    with pytest.raises(EdgekitError, match="ImageFolder tree"):
        labelled_images(tmp_path)


def test_file_order_matches_path_sorting(tmp_path):
    names = ["b/z.png", "a/x/2.png", "a/1.png", "a-b/1.png", "a/x.png", "B/1.png"]
    for name in names:
        _png(tmp_path / name)
    images = find_images(tmp_path)
    assert images.files == sorted(tmp_path / name for name in names)
    assert [images.classes[i] for i in images.labels] == [p.relative_to(tmp_path).parts[0] for p in images.files]


# --- listing: unreadable folders, symlinks ---------------------------------------------------------

def _deny_listing(monkeypatch, denied: Path):
    real = os.scandir

    def scandir(path="."):
        if Path(path) == denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)  # os.walk looks scandir up in the os module


@pytest.mark.parametrize("denied", ["b", "a/deep", "."])
def test_unlistable_folder_is_an_error_naming_it(tmp_path, monkeypatch, denied):
    _png(tmp_path / "a" / "1.png")
    _png(tmp_path / "a" / "deep" / "2.png")
    _png(tmp_path / "b" / "1.png")
    _deny_listing(monkeypatch, tmp_path / denied)
    with pytest.raises(EdgekitError, match=rf"cannot list calibration folder {re.escape(str(tmp_path / denied))}: "
                                           "Permission denied"):
        find_images(tmp_path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can list a chmod 000 folder")
def test_chmod_000_folder_is_an_error(tmp_path):
    _png(tmp_path / "a" / "1.png")
    _png(tmp_path / "b" / "1.png")
    (tmp_path / "b").chmod(0)
    try:
        with pytest.raises(EdgekitError, match="cannot list .*b"):
            find_images(tmp_path)
    finally:
        (tmp_path / "b").chmod(0o755)


def test_symlinked_images_and_class_folders_are_found_without_looping(tmp_path):
    store = tmp_path / "store"
    _png(store / "cat.png")
    _png(store / "dogs" / "1.png")
    root = tmp_path / "data"
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "1.png").symlink_to(store / "cat.png")
    (root / "dog").symlink_to(store / "dogs", target_is_directory=True)
    (root / "cat" / "loop").symlink_to(root, target_is_directory=True)  # not entered
    images = labelled_images(root)
    assert images.classes == ["cat", "dog"] and images.labels == [0, 1]
    assert images.files == [root / "cat" / "1.png", root / "dog" / "1.png"]
    assert images.load(GRAY).shape == (2, 1, 16, 16)


def test_broken_image_link_is_an_error_naming_it(tmp_path):
    _png(tmp_path / "ok.png")
    (tmp_path / "gone.png").symlink_to(tmp_path / "missing.png")
    with pytest.raises(EdgekitError, match="gone.png is not a readable file"):
        find_images(tmp_path)


# --- files that go wrong between listing and loading ----------------------------------------------

def test_vanished_file_is_a_one_line_error(tmp_path):
    _png(tmp_path / "a.png")
    _png(tmp_path / "b.png")
    images = find_images(tmp_path)
    (tmp_path / "b.png").unlink()
    for call in (lambda: images.load(GRAY), images.content_sha256):
        with pytest.raises(EdgekitError, match="b.png no longer exists") as caught:
            call()
        assert caught.value.__cause__ is None and "\n" not in caught.value.one_line()


def test_folder_named_like_an_image(tmp_path):
    _png(tmp_path / "x.jpg" / "inside.png")  # a folder called x.jpg is a folder: its images are found
    assert find_images(tmp_path).files == [tmp_path / "x.jpg" / "inside.png"]
    images = ImageSet(tmp_path, [tmp_path / "x.jpg"])  # e.g. replaced by a folder after listing
    with pytest.raises(EdgekitError, match=r"x.jpg is a folder, not an image file"):
        images.load(GRAY)
    with pytest.raises(EdgekitError, match=r"x.jpg is a folder"):
        images.content_sha256()


def test_unreadable_file_is_a_one_line_error(tmp_path, monkeypatch):
    _png(tmp_path / "secret.png")
    images = find_images(tmp_path)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "secret.png"))

    monkeypatch.setattr(Image, "open", denied)
    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(EdgekitError, match="cannot read image .*secret.png: permission denied"):
        images.load(GRAY)
    with pytest.raises(EdgekitError, match="secret.png: permission denied"):
        images.content_sha256()


@pytest.mark.parametrize("size,pixels", [((20, 10), "200"), ((30, 10), "300")])  # warning, then error
def test_decompression_bomb_is_a_one_line_error_naming_file_and_size(tmp_path, monkeypatch, size, pixels):
    _png(tmp_path / "huge.png", size=size)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(EdgekitError, match=rf"huge.png is too large \({pixels} pixels, over the 100-pixel") as caught:
        find_images(tmp_path).load(GRAY)
    assert caught.value.__cause__ is None and "\n" not in str(caught.value)


def test_png_header_claiming_huge_dimensions_is_refused_before_decoding(tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 20000, 10000, 8, 0, 0, 0, 0)  # 200 Mpixel 8-bit gray, no pixel data
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    with pytest.raises(EdgekitError, match=r"bomb.png is too large \(200000000 pixels"):
        find_images(tmp_path).load(GRAY)
