import pytest
import torch

from edgekit.core.errors import EdgekitError
from edgekit.models import build_model, default_config, get_spec, list_models, register_model


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_builds_and_runs(name):
    spec = get_spec(name)
    config = default_config(name, num_classes=7)
    model = build_model(config).eval()
    # 224-pixel ImageNet layouts also run at 64 px (adaptive pooling); it keeps the test fast.
    size = min(spec.input_size, 64)
    with torch.no_grad():
        out = model(torch.randn(2, spec.in_channels, size, size))
    assert out.shape == (2, 7)


@pytest.mark.parametrize("name", ["tiny_cnn", "mobilenet_v2_cifar", "resnet101_cifar"])
def test_grayscale_variant_takes_one_channel(name):
    model = build_model(default_config(name, in_channels=1)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape[1] == get_spec(name).num_classes


def _params(name: str, num_classes: int) -> int:
    return sum(p.numel() for p in build_model(default_config(name, num_classes=num_classes)).parameters())


def test_parameter_counts_match_the_papers_baselines():
    # kEffNet papers: EfficientNet-B0 with a 10-class head has exactly 4,020,358 parameters.
    assert _params("efficientnet_b0_cifar", 10) == 4_020_358
    # Compression paper: ResNet-101 for CIFAR-10 42.513 M, VGG-19(-BN) for CIFAR-100 39.328 M.
    assert _params("resnet101_cifar", 10) == pytest.approx(42.513e6, rel=0.001)
    assert _params("vgg19_bn_cifar", 100) == pytest.approx(39.328e6, rel=0.001)


def test_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_model("tiny_cnn", input_size=32, description="dup")(lambda **_: None)


def test_unknown_model_names_the_known_ones():
    with pytest.raises(EdgekitError, match="registered models: .*mobilenet_v2"):
        get_spec("mobilenet_v9")


def test_options_a_builder_does_not_take_are_refused_before_building():
    with pytest.raises(EdgekitError, match=r"model 'tiny_cnn' does not take options \['batchnorm', 'depth'\]"):
        build_model(default_config("tiny_cnn", options={"batchnorm": False, "depth": 3}))
    assert build_model(default_config("tiny_cnn", options={"batchnorm": False})) is not None


def test_a_type_error_inside_a_builder_is_not_taken_for_an_unknown_option(monkeypatch):
    from edgekit.models import ModelSpec, _registry

    def broken(*, num_classes: int, in_channels: int = 3):
        raise TypeError("unexpected keyword inside the builder")

    monkeypatch.setattr(_registry, "get_spec", lambda name: ModelSpec(name, broken, 8, "raises"))
    with pytest.raises(TypeError, match="inside the builder"):
        build_model(default_config("broken", options={}))


def test_cifar_preprocessing_resizes_directly_and_imagenet_crops():
    assert get_spec("mobilenet_v2_cifar").preprocessing().resize is None
    imagenet = get_spec("mobilenet_v2").preprocessing()
    assert (imagenet.resize, imagenet.input_size) == (256, (224, 224))
    assert get_spec("mobilenet_v2").preprocessing(input_size=112).resize == 128


def test_stats_use_torch_flop_counter_and_match_known_costs():
    from edgekit.models.stats import model_stats

    mobilenet = model_stats(default_config("mobilenet_v2"))
    assert mobilenet["params"] == 3_504_872
    assert mobilenet["macs"] == pytest.approx(300e6, rel=0.01)  # MobileNetV2 paper: 300 M multiply-adds
    resnet = model_stats(default_config("resnet101_cifar"))
    assert resnet["macs"] == pytest.approx(2520e6, rel=0.01)  # compression paper: 2520 M FLOPs (MACs)
    assert resnet["flops"] == 2 * resnet["macs"]


def test_models_stats_cli_prints_params():
    from click.testing import CliRunner

    from edgekit.cli.commands import cli

    result = CliRunner().invoke(cli, ["models", "--stats", "--filter", "tiny_cnn"])
    assert result.exit_code == 0 and "0.045" in result.output  # 45,306 parameters
