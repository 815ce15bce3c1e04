import numpy as np
import pytest
import torch

from edgekit.core.errors import EdgekitError
from edgekit.data.preprocessing import Preprocessing
from edgekit.train.data import Augmentation, TensorImages, load_training_data

PREPROCESSING = Preprocessing(input_size=(32, 32), channels=3, mean=(0.5,) * 3, std=(0.25,) * 3)


def _images(count=6):
    return torch.arange(count * 3 * 32 * 32, dtype=torch.float32).reshape(count, 3, 32, 32) / 1e4


def test_augmentation_depends_only_on_seed_epoch_and_index():
    dataset = TensorImages(_images(), [0] * 6, augmentation=Augmentation(4, True), fill=(-2.0,) * 3, seed=3)
    other = TensorImages(_images(), [0] * 6, augmentation=Augmentation(4, True), fill=(-2.0,) * 3, seed=3)
    dataset.set_epoch(1)
    other.set_epoch(1)
    assert all(torch.equal(dataset[i][0], other[i][0]) for i in range(6))
    first = [dataset[i][0] for i in range(6)]
    dataset.set_epoch(2)
    assert any(not torch.equal(a, dataset[i][0]) for i, a in enumerate(first))


def test_random_crop_pads_with_normalised_black_and_keeps_the_shape():
    fill = (-2.0, -1.0, 0.5)
    dataset = TensorImages(_images(1) + 10, [0], augmentation=Augmentation(4, False), fill=fill, seed=0)
    seen_padding = False
    for epoch in range(20):
        dataset.set_epoch(epoch)
        image, _ = dataset[0]
        assert image.shape == (3, 32, 32)
        padded = image < 5  # real pixels are >= 10
        if padded.any():
            seen_padding = True
            for channel, value in enumerate(fill):
                assert torch.all(image[channel][padded[channel]] == value)
    assert seen_padding


def test_folder_split_is_deterministic_and_stratified(pattern_data):
    first = load_training_data(str(pattern_data["train"]), PREPROCESSING, val_fraction=0.25, seed=0, verbose=False)
    second = load_training_data(str(pattern_data["train"]), PREPROCESSING, val_fraction=0.25, seed=0, verbose=False)
    assert torch.equal(first.val.images, second.val.images)
    assert len(first.train) + len(first.val) == 4 * 80
    assert np.bincount(first.val.labels.numpy()).tolist() == [20, 20, 20, 20]
    assert first.fingerprint["val_images"] == 80


def test_subset_and_a_separate_validation_folder(pattern_data):
    data = load_training_data(str(pattern_data["train"]), PREPROCESSING, val_fraction=0.1, seed=0,
                              val_dir=str(pattern_data["val"]), subset=40, verbose=False)
    assert (len(data.train), len(data.val)) == (40, 100)


def test_cifar10_without_the_files_says_how_to_get_them(tmp_path):
    with pytest.raises(EdgekitError, match="pass --download"):
        load_training_data("cifar10", PREPROCESSING, val_fraction=0.1, seed=0, cifar_root=tmp_path, verbose=False)


def test_flat_folder_is_refused_for_training(tmp_path, pattern_data):
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in list((pattern_data["train"] / "blob").iterdir())[:3]:
        (flat / path.name).write_bytes(path.read_bytes())
    with pytest.raises(EdgekitError, match="ImageFolder"):
        load_training_data(str(flat), PREPROCESSING, val_fraction=0.1, seed=0, verbose=False)
