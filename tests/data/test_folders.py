from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgekit.data import Preprocessing, find_images, labelled_images
from edgekit.errors import EdgekitError

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
