"""Structured channel pruning: what shrinks, what is left whole and why, export, and persistence."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from edgekit.core.errors import EdgekitError
from edgekit.models import build_model, default_config
from edgekit.models.layers.channel_interleave import ChannelInterleave
from edgekit.models.pruned_shapes import apply_pruned_shapes, pruned_shapes
from edgekit.prune import structured
from edgekit.prune.structured import prune_channels


def _registry_model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return build_model(default_config(name)).eval()


def _example() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _convs(model: nn.Module) -> dict[str, tuple[int, int, int]]:
    return {n: (m.in_channels, m.out_channels, m.groups) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def _reasons(result) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in result.skipped)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class _Head(nn.Module):
    """Global pool + linear: the end of every small test network below."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, 10)

    def forward(self, x):
        return self.fc(x.mean((2, 3)))


def _conv_bn(cin: int, cout: int, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def _randomise_batchnorm(model: nn.Module) -> None:
    """Non-trivial BN statistics and affine terms, so zeroing or moving them shows in the outputs."""
    generator = torch.Generator().manual_seed(2)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=generator) * 0.1)


# --- the registry models the brief names ---------------------------------------------------------

def test_tiny_cnn_halves_every_layer_but_the_classifier_outputs():
    model = _registry_model("tiny_cnn")
    params = _params(model)
    result = prune_channels(model, _example(), ratio=0.5)
    assert result.model is model
    assert _convs(model) == {"features.0": (3, 8, 1), "features.3": (8, 16, 1), "features.6": (16, 16, 16),
                             "features.9": (16, 32, 1), "features.12": (32, 32, 1)}
    assert (model.classifier.in_features, model.classifier.out_features) == (32, 10)
    assert result.skipped == ["classifier: its outputs are the model's outputs"]
    assert (result.params_before, result.params_after) == (params, _params(model))
    assert result.macs_after < result.macs_before / 3


def test_round_to_rounds_each_kept_count_down_to_a_multiple():
    plain, rounded = _registry_model("tiny_cnn"), _registry_model("tiny_cnn")
    prune_channels(plain, _example(), ratio=0.3)
    prune_channels(rounded, _example(), ratio=0.3, round_to=8)
    # floor(16 * 0.7) = 11, floor(32 * 0.7) = 22, floor(64 * 0.7) = 44; rounded down to 8, 16, 40.
    assert [c[1] for c in _convs(plain).values()] == [11, 22, 22, 44, 44]
    assert [c[1] for c in _convs(rounded).values()] == [8, 16, 16, 40, 40]


def test_mobilenet_v2_shrinks_and_blocks_keep_their_recorded_widths():
    model = _registry_model("mobilenet_v2_cifar")
    result = prune_channels(model, _example(), ratio=0.5)
    assert result.skipped == ["classifier.1: its outputs are the model's outputs"]
    assert result.params_after < result.params_before / 3 and result.macs_after < result.macs_before / 3
    _assert_recorded_widths_match_the_tensors(model)


def test_keffnet_interleaved_groups_are_left_whole_with_their_reason():
    model = _registry_model("keffnet_b0_16ch")
    interleaves_before = {n: (m.channels, m.step) for n, m in model.named_modules() if isinstance(m, ChannelInterleave)}
    result = prune_channels(model, _example(), ratio=0.5)
    assert result.params_after < result.params_before and result.macs_after < result.macs_before
    reasons = _reasons(result)
    # The stage's residual stream passes the interleaves of both blocks; either may be named.
    assert re.search(r"channel permutation \(TransposeBackward0 in features\.2\.[01]\.block\.3\.interleave\)",
                     reasons["features.2.0.block.3.conv1.0"])
    # The SE reduce conv has one output per group (torch-pruning would take it for depthwise); it
    # also reads the block's expanded channels, so the expand conv stays too.
    for name in ("features.2.0.block.2.fc1.conv1.0", "features.2.0.block.0.conv1.0"):
        assert "grouped conv features.2.0.block.2.fc1.conv1.0 (96->4, 4 groups) has one output channel" in reasons[name]
    assert {n: (m.channels, m.step) for n, m in model.named_modules() if isinstance(m, ChannelInterleave)} == interleaves_before
    _assert_recorded_widths_match_the_tensors(model)
    # What did shrink is the stem and the first block, whose convs are dense.
    assert model.features[0][0].out_channels == 16


def test_keffnet_2022_padding_blocks_are_opaque_so_the_group_search_ends():
    # Looking inside PaddedGroupConv (input concatenated with slices of itself), torch-pruning's
    # group search on this model ran for minutes and gigabytes without finishing.
    model = _registry_model("keffnet2_b0_32ch")
    result = prune_channels(model, _example(), ratio=0.5)
    reasons = _reasons(result)
    assert reasons["features.4.0.block.3.conv1.main.0"] == (
        "inside features.4.0.block.3.conv1 (PaddedGroupConv), which torch-pruning treats as one opaque block")
    assert "(PaddedGroupConv), which pads its input" in reasons["features.4.0.block.1.0"]
    assert result.params_after < result.params_before and result.macs_after < result.macs_before


def _assert_recorded_widths_match_the_tensors(model: nn.Module) -> None:
    """Every block's in_channels/out_channels (and every interleave's channels) is what flows through it."""
    mismatches, handles = [], []

    def check(name):
        def hook(module, args, output):
            if isinstance(module, ChannelInterleave) and module.channels != args[0].shape[1]:
                mismatches.append((name, "channels", module.channels, args[0].shape[1]))
            if isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
                return
            for attribute, tensor in (("in_channels", args[0]), ("out_channels", output)):
                value = getattr(module, attribute, None)
                if isinstance(value, int) and value != tensor.shape[1]:
                    mismatches.append((name, attribute, value, tensor.shape[1]))
        return hook

    for name, module in model.named_modules():
        handles.append(module.register_forward_hook(check(name)))
    with torch.no_grad():
        model(_example())
    for handle in handles:
        handle.remove()
    checked = [m for m in model.modules() if isinstance(getattr(m, "out_channels", None), int)]
    assert checked and not mismatches, mismatches[:5]


@pytest.mark.parametrize("name", ["tiny_cnn", "mobilenet_v2_cifar", "keffnet_b0_16ch"])
def test_pruned_models_export_to_onnx_and_match_pytorch(name, tmp_path):
    import onnxruntime as ort

    model = _registry_model(name)
    prune_channels(model, _example(), ratio=0.5)
    x = _example()
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, x, str(path), dynamo=False, opset_version=17)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    assert onnx_out.shape == expected.shape == (2, 10)
    assert np.abs(onnx_out - expected).max() < 1e-4


@pytest.mark.parametrize("name", ["tiny_cnn", "keffnet_b0_16ch"])
def test_a_pruned_checkpoint_reloads_weights_only_into_a_fresh_build(name, tmp_path):
    model = _registry_model(name)
    prune_channels(model, _example(), ratio=0.5)
    torch.save({"shapes": pruned_shapes(model), "state_dict": model.state_dict()}, tmp_path / "pruned.pt")
    saved = torch.load(tmp_path / "pruned.pt", weights_only=True)
    fresh = build_model(default_config(name)).eval()
    apply_pruned_shapes(fresh, saved["shapes"])
    fresh.load_state_dict(saved["state_dict"])  # strict
    x = _example()
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))
    assert _convs(fresh) == _convs(model)
    _assert_recorded_widths_match_the_tensors(fresh)


def test_shapes_from_another_model_are_refused():
    shapes = pruned_shapes(_registry_model("tiny_cnn"))
    with pytest.raises(EdgekitError, match="do not fit this model"):
        apply_pruned_shapes(_registry_model("mobilenet_v2_cifar"), shapes)
    with pytest.raises(EdgekitError, match="record"):
        apply_pruned_shapes(_registry_model("tiny_cnn"), {"layers": {}})


# --- small networks that isolate one rule each ---------------------------------------------------

def test_the_least_important_channels_go_and_the_rest_keep_their_weights_and_statistics():
    model = nn.Sequential(*_conv_bn(3, 8), *_conv_bn(8, 8), _Head(8))
    _randomise_batchnorm(model)
    weak = [1, 4, 6, 7]
    with torch.no_grad():  # weak in every layer of their group: filter, BN scale and shift, consumer
        model[0].weight[weak] *= 1e-3
        model[1].weight[weak] *= 1e-3
        model[1].bias[weak] *= 1e-3
        model[3].weight[:, weak] *= 1e-3
    kept = [0, 2, 3, 5]
    first_conv, first_bn = model[0].weight.clone(), model[1].running_mean.clone()
    model.train()  # the function must not move BN statistics while it traces
    prune_channels(model, _example(), ratio=0.5)
    assert model.training
    assert torch.equal(model[0].weight, first_conv[kept])
    assert torch.equal(model[1].running_mean, first_bn[kept])


class _ShapeFollowingShuffle(nn.Module):
    """A channel shuffle that reads its width from the input, so it still runs on wrongly pruned channels.

    edgekit's own (``ChannelInterleave``) has a fixed width and refuses any other outright; this one
    lets the check on the pruned network's outputs show that it catches what still runs.
    """

    def forward(self, x):
        n, c, h, w = x.shape
        return x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


def test_a_channel_shuffle_is_left_whole_and_the_equivalence_check_catches_it_otherwise(monkeypatch):
    def shuffled(shuffle: nn.Module) -> nn.Module:
        torch.manual_seed(0)
        model = nn.Sequential(*_conv_bn(3, 8), shuffle, *_conv_bn(8, 8), _Head(8)).eval()
        _randomise_batchnorm(model)
        return model

    model = shuffled(ChannelInterleave.of_groups(8, 2))
    result = prune_channels(model, _example(), ratio=0.5)
    assert model[0].out_channels == 8
    assert _reasons(result)["0"].startswith("its channels pass through a channel permutation (TransposeBackward0 in 3)")
    assert model[4].out_channels == 4  # the conv after the shuffle still shrinks
    # Without the rule torch-pruning removes channels i before the shuffle and i after it.
    monkeypatch.setattr(structured, "_PERMUTING_OPS", structured.re.compile("no such op"))
    with pytest.raises(EdgekitError, match="differs from the original with the removed channels zeroed"):
        prune_channels(shuffled(_ShapeFollowingShuffle()), _example(), ratio=0.5)


def test_grouped_convs_lose_the_same_positions_in_every_group():
    model = nn.Sequential(*_conv_bn(3, 16), nn.Conv2d(16, 32, 1, groups=4, bias=False), nn.BatchNorm2d(32),
                          nn.ReLU(), _Head(32)).eval()
    _randomise_batchnorm(model)
    result = prune_channels(model, _example(), ratio=0.5)
    assert (model[3].in_channels, model[3].out_channels, model[3].groups) == (8, 16, 4)
    assert result.skipped == ["6.fc: its outputs are the model's outputs"]


def test_round_to_with_grouped_convs_is_left_whole():
    model = nn.Sequential(*_conv_bn(3, 16), nn.Conv2d(16, 32, 1, groups=4, bias=False), nn.BatchNorm2d(32),
                          nn.ReLU(), _Head(32)).eval()
    result = prune_channels(model, _example(), ratio=0.5, round_to=8)
    assert model[3].groups == 4 and model[3].out_channels == 32 and model[0].out_channels == 16
    assert _reasons(result)["3"].startswith("round_to=8 with 4-group convs")


class _TwoGroupCounts(nn.Module):
    """One tensor read by a 4-group and a 6-group conv: its channel count must stay divisible by 12."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, 24))
        self.four = nn.Conv2d(24, 8, 1, groups=4)
        self.six = nn.Conv2d(24, 12, 1, groups=6)
        self.head = _Head(20)

    def forward(self, x):
        x = self.stem(x)
        return self.head(torch.cat([self.four(x), self.six(x)], 1))


def test_grouped_convs_with_different_group_counts_on_one_tensor_are_left_whole():
    model = _TwoGroupCounts().eval()
    result = prune_channels(model, _example(), ratio=0.5)
    assert model.stem[0].out_channels == 24
    assert _reasons(result)["stem.0"].startswith("grouped convs with 4 and 6 groups share these channels")


class _GhostWithGate(nn.Module):
    """A ghost module (a conv's output concatenated with a depthwise conv of it), then an SE gate."""

    def __init__(self) -> None:
        super().__init__()
        self.primary = nn.Conv2d(3, 8, 1, bias=False)
        self.cheap = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.gate = nn.Conv2d(16, 16, 1)
        self.head = _Head(16)

    def forward(self, x):
        primary = self.primary(x)
        ghost = torch.relu(self.bn(torch.cat([primary, self.cheap(primary)], 1)))
        return self.head(ghost * torch.sigmoid(self.gate(ghost.mean((2, 3), keepdim=True))))


def test_tied_channels_are_left_whole_instead_of_overshooting_the_ratio():
    # torch-pruning ranks the gate's 16 outputs, but each of the primary conv's 8 channels is two of
    # them (itself and its depthwise copy): removing 8 "channels" could take up to 8 of the 8.
    model = _GhostWithGate().eval()
    result = prune_channels(model, _example(), ratio=0.5)
    assert model.primary.out_channels == 8 and model.bn.num_features == 16
    assert _reasons(result)["primary"].startswith("its channels come in tied sets of 2")


class _Ghost(_GhostWithGate):
    def forward(self, x):
        primary = self.primary(x)
        return self.head(torch.relu(self.bn(torch.cat([primary, self.cheap(primary)], 1))))


def test_a_ghost_module_ranked_from_its_narrow_side_is_pruned():
    # Without the gate torch-pruning ranks the primary conv's 8 channels, each removal taking the
    # channel and its depthwise copy: exactly the ratio.
    model = _Ghost().eval()
    del model.gate
    result = prune_channels(model, _example(), ratio=0.5)
    assert (model.primary.out_channels, model.cheap.out_channels, model.bn.num_features) == (4, 4, 8)
    assert result.skipped == ["head.fc: its outputs are the model's outputs"]


def test_a_depthwise_conv_on_the_input_keeps_the_input_channels():
    model = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, groups=3), *_conv_bn(3, 16), *_conv_bn(16, 16), _Head(16))
    result = prune_channels(model.eval(), _example(), ratio=0.5)
    assert (model[0].in_channels, model[0].out_channels) == (3, 3)
    assert model[1].out_channels == 8
    assert _reasons(result)["0"] == "depthwise conv 0 reads the model input, whose channels must stay"


@pytest.mark.parametrize(("options", "message"), [
    ({"ratio": 0.0}, "ratio must be in"), ({"ratio": 1.0}, "ratio must be in"),
    ({"ratio": 0.5, "round_to": 0}, "round_to must be"), ({"ratio": 0.5, "round_to": 2.5}, "round_to must be"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(EdgekitError, match=message):
        prune_channels(_registry_model("tiny_cnn"), _example(), **options)


def test_an_input_the_model_cannot_run_is_refused_before_any_pruning():
    model = _registry_model("tiny_cnn")
    with pytest.raises(EdgekitError, match=r"does not run on an example_input of shape \(2, 1, 32, 32\)"):
        prune_channels(model, torch.randn(2, 1, 32, 32), ratio=0.5)
    assert model.features[0].out_channels == 16

