"""torchvision:NAME: every classification network resolves or is refused with a reason; the
preprocessing is the one its weights declare; --num-classes and --in-channels rebuild the network."""

import pytest
import torch

from edgekit.core.errors import EdgekitError
from edgekit.models import build_model, default_config, get_spec
from edgekit.models.pretrained import classifier_keys
from edgekit.models.torchvision_zoo import listing, refusal, torchvision_names


def test_every_torchvision_name_resolves_or_is_refused_with_a_reason():
    rows = listing()
    assert len(rows) == len(torchvision_names()) > 50
    refused = {name: reason for name, spec, reason in rows if spec is None}
    for name in ("torchvision:vit_b_16", "torchvision:swin_t", "torchvision:maxvit_t", "torchvision:regnet_y_128gf"):
        assert refused[name]
    for name in ("torchvision:resnet18", "torchvision:mobilenet_v3_small", "torchvision:efficientnet_b1",
                 "torchvision:regnet_y_400mf", "torchvision:shufflenet_v2_x1_0", "torchvision:convnext_tiny"):
        assert name not in refused and get_spec(name).name == name
    with pytest.raises(EdgekitError, match="torchvision:swin_t is not supported: a shifted-window transformer"):
        get_spec("torchvision:swin_t")
    assert "2 GiB" in refusal("regnet_y_128gf")


def test_preprocessing_is_what_the_weights_declare():
    b1 = get_spec("torchvision:efficientnet_b1").preprocessing()  # DEFAULT = IMAGENET1K_V2: 255 -> 240, bilinear
    assert (b1.input_size, b1.resize, b1.interpolation) == ((240, 240), 255, "bilinear")
    b0 = get_spec("torchvision:efficientnet_b0").preprocessing(input_size=112)
    assert (b0.input_size, b0.resize, b0.interpolation) == ((112, 112), 128, "bicubic")
    assert get_spec("torchvision:convnext_tiny").preprocessing().resize == 236
    assert get_spec("torchvision:resnet18").preprocessing().mean == (0.485, 0.456, 0.406)


def test_num_classes_and_in_channels_rebuild_the_network():
    model = build_model(default_config("torchvision:shufflenet_v2_x0_5", num_classes=7, in_channels=1)).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 7)


def test_input_sizes_the_network_cannot_take_are_refused_up_front():
    with pytest.raises(EdgekitError, match=r"'torchvision:vgg11' takes 224 px input only, got 64 \(AdaptiveAvgPool2d"):
        default_config("torchvision:vgg11", input_size=64)
    with pytest.raises(EdgekitError, match="'torchvision:inception_v3' needs input of at least 75 px, got 64"):
        default_config("torchvision:inception_v3", input_size=64)


def test_unknown_names_point_at_similar_ones():
    with pytest.raises(EdgekitError, match=r"no classification model 'resnet' \(similar: resnet101.*models --all"):
        get_spec("torchvision:resnet")


@pytest.mark.parametrize("name,expected", [
    ("torchvision:resnet18", {"fc.weight", "fc.bias"}),
    ("torchvision:squeezenet1_1", {"classifier.1.weight", "classifier.1.bias"}),  # a 1x1 conv head
    ("torchvision:googlenet", {"fc.weight", "fc.bias", "aux1.fc2.weight", "aux1.fc2.bias",
                               "aux2.fc2.weight", "aux2.fc2.bias"}),  # auxiliary heads count too
])
def test_the_class_sized_tensors_are_found_without_guessing_the_layer(name, expected):
    assert classifier_keys(default_config(name, num_classes=10), 1000) == expected


def test_models_all_lists_torchvision_and_the_refused(monkeypatch):
    from click.testing import CliRunner

    from edgekit.cli.commands import cli

    output = CliRunner().invoke(cli, ["models", "--all", "--filter", "*vi*"]).output
    assert "refused: a vision transformer" in output and "tiny_cnn" not in output
    assert "torchvision:resnet18" in CliRunner().invoke(cli, ["models", "--all"]).output
    assert "torchvision:" not in CliRunner().invoke(cli, ["models"]).output
