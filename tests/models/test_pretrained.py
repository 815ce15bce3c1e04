"""--pretrained without any real download: a fake file in a temporary torch hub cache, and a
download function that refuses to run (the ``hub`` fixture and ``publish_fake`` in tests/conftest.py
say how the fake passes the real hash check)."""

import re

import pytest
import torch

from edgekit.builder.source import check_pretrained
from edgekit.core.errors import EdgekitError
from edgekit.core.hashing import sha256_file
from edgekit.models import build_model, default_config
from edgekit.models.pretrained import load_pretrained, pretrained_module

from ..conftest import FAKE_PUBLISHED as NAME
from ..conftest import publish_fake


def test_a_cached_file_is_used_without_the_network(hub, monkeypatch):
    fake = publish_fake(hub, monkeypatch)
    published = check_pretrained(f"torchvision:{NAME}", "DEFAULT", in_channels=None)
    state_dict, record = load_pretrained(published)
    assert hub["attempts"] == [] and record["source"] == "cache" and record["path"] == str(fake["path"])
    assert record["pretrained"] == "ShuffleNet_V2_X0_5_Weights.IMAGENET1K_V1"
    assert record["sha256"] == sha256_file(fake["path"])
    assert all(torch.equal(state_dict[key], value) for key, value in fake["state_dict"].items())


def test_another_head_size_keeps_every_other_published_tensor(hub, monkeypatch):
    fake = publish_fake(hub, monkeypatch)
    published = check_pretrained(f"torchvision:{NAME}", "IMAGENET1K_V1", in_channels=None)
    state_dict, _ = load_pretrained(published)
    config = default_config(f"torchvision:{NAME}", num_classes=5, input_size=32)
    module, fresh = pretrained_module(config, published, state_dict, source="fake")
    assert fresh == ["fc.bias", "fc.weight"]
    loaded = module.state_dict()
    assert loaded["fc.weight"].shape == (5, 1024)
    assert all(torch.equal(loaded[key], value) for key, value in fake["state_dict"].items() if key not in fresh)


def test_a_cached_file_that_is_not_the_published_one_is_refused(hub, monkeypatch):
    fake = publish_fake(hub, monkeypatch, matching_hash=False)
    published = check_pretrained(f"torchvision:{NAME}", "DEFAULT", in_channels=None)
    expected = re.escape(f"cached weights {fake['path']} are not the published file: their sha256 starts ") + \
        "[0-9a-f]{10}, the name says 0123456789; delete the file"
    with pytest.raises(EdgekitError, match=expected):
        load_pretrained(published)
    assert hub["attempts"] == []


def test_offline_is_one_line_naming_the_file_and_where_to_put_it(hub):
    published = check_pretrained(f"torchvision:{NAME}", "DEFAULT", in_channels=None)
    with pytest.raises(EdgekitError) as caught:
        load_pretrained(published)
    message = caught.value.one_line()
    assert hub["attempts"] == ["https://download.pytorch.org/models/shufflenetv2_x0.5-f707e7126e.pth"]
    assert "cannot download ShuffleNet_V2_X0_5_Weights.IMAGENET1K_V1 (no network?): put " \
           f"shufflenetv2_x0.5-f707e7126e.pth from https://download.pytorch.org/models/shufflenetv2_x0.5-f707e7126e.pth " \
           f"into {hub['checkpoints']}/" in message
    assert "network blocked by the test" in message and "\n" not in message


def test_pretrained_is_checked_before_any_download(hub):
    with pytest.raises(EdgekitError, match=r"--pretrained 'V9': torchvision:resnet18 has weights IMAGENET1K_V1 \(DEFAULT"):
        check_pretrained("torchvision:resnet18", "V9", in_channels=None)
    assert check_pretrained("torchvision:resnet18", "ResNet18_Weights.IMAGENET1K_V1", in_channels=3).categories == 1000
    with pytest.raises(EdgekitError, match="take 3-channel"):
        check_pretrained("torchvision:resnet18", "DEFAULT", in_channels=1)
    with pytest.raises(EdgekitError, match="VGG16_Weights.IMAGENET1K_FEATURES are feature-extraction weights"):
        check_pretrained("torchvision:vgg16", "IMAGENET1K_FEATURES", in_channels=None)
    with pytest.raises(EdgekitError, match="'tiny_cnn' has no published weights"):
        check_pretrained("tiny_cnn", "DEFAULT", in_channels=None)
    assert hub["attempts"] == []


def test_a_tag_brings_its_own_preprocessing_and_the_builder_arguments_it_implies():
    swag = check_pretrained("torchvision:regnet_y_16gf", "IMAGENET1K_SWAG_E2E_V1", in_channels=None)
    assert (swag.spec.input_size, swag.spec.resize, swag.spec.interpolation) == (384, 384, "bicubic")
    googlenet = check_pretrained("torchvision:googlenet", "DEFAULT", in_channels=None)
    # torchvision's builder sets these when it loads weights; a rebuild from the config must too.
    assert googlenet.options == {"transform_input": True, "aux_logits": True, "init_weights": False}
    with torch.device("meta"):
        model = build_model(default_config("torchvision:googlenet", options=googlenet.options))
    assert model.transform_input and model.aux1 is not None
