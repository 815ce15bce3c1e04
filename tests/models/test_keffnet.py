import numpy as np
import pytest
import torch
from torch import nn

import edgekit.models.keffnet  # noqa: F401  (registers the kEffNet models)
from edgekit.models import build_model, default_config, get_spec
from edgekit.models.batchnorm import recalibrate_batchnorm
from edgekit.models.layers.channel_interleave import ChannelInterleave, interleave_channels
from edgekit.models.layers.grouped_pointwise_interleave import (
    GroupedPointwiseInterleave,
    PaddedGroupConv,
    PaddedGroupedPointwiseInterleave,
    pointwise_groups,
)

KEFFNETS = ["keffnet_b0_16ch", "keffnet_b0_32ch", "keffnet2_b0_16ch", "keffnet2_b0_32ch"]


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _keras_interleave(x: torch.Tensor, step: int) -> torch.Tensor:
    # The authors' InterleaveChannels(step): every step-th channel, for each start position.
    return torch.cat([x[:, s::step] for s in range(step)], dim=1)


@pytest.mark.parametrize(("name", "expected"), [
    ("efficientnet_b0_cifar", 4_020_358),
    ("keffnet_b0_16ch", 639_702),
    ("keffnet_b0_32ch", 1_059_202),
    ("keffnet2_b0_16ch", 623_226),
    ("keffnet2_b0_32ch", 950_650),
])
def test_parameter_counts_match_the_papers_exactly(name, expected):
    assert _params(build_model(default_config(name, num_classes=10))) == expected


def test_interleave_is_a_permutation_that_mixes_groups():
    x = torch.arange(12.0).view(1, 12, 1, 1)  # 3 groups of 4 channels: 0-3, 4-7, 8-11
    y = interleave_channels(x, 4).flatten().tolist()
    assert y == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert sorted(y) == list(range(12))
    # Every run of 3 consecutive outputs now holds one channel of each group.
    assert all({int(c) // 4 for c in y[i:i + 3]} == {0, 1, 2} for i in range(0, 12, 3))
    assert torch.equal(interleave_channels(x, 4), nn.functional.channel_shuffle(x, 3))


@pytest.mark.parametrize(("channels", "step"), [(12, 4), (112, 3), (10, 4), (7, 2)])
def test_interleave_matches_the_authors_definition(channels, step):
    x = torch.randn(2, channels, 3, 2)
    assert torch.equal(ChannelInterleave(channels, step)(x), _keras_interleave(x, step))


def test_group_count_rule_of_2021():
    assert pointwise_groups(96, 24, 16) == 6    # 96 // 16 = 6 divides both
    assert pointwise_groups(240, 40, 32) == 5   # 240 // 32 = 7 -> largest common divisor <= 7
    assert pointwise_groups(24, 144, 16) == 1   # 24 // 16 = 1: stays a dense conv
    assert pointwise_groups(96, 4, 16) == 4     # SE reduce: limited by the 4 outputs


def test_2021_block_layout_and_shape():
    block = GroupedPointwiseInterleave(96, 24, channels_per_group=16, activation_layer=nn.SiLU)
    assert block.groups == 6 and block.interleave.step == 4 and block.conv2 is not None
    assert block(torch.randn(2, 96, 5, 5)).shape == (2, 24, 5, 5)
    expanding = GroupedPointwiseInterleave(40, 240, channels_per_group=16)
    assert expanding.groups == 2 and expanding.conv2 is None  # no second conv where F > Cin
    assert expanding(torch.randn(2, 40, 3, 3)).shape == (2, 240, 3, 3)
    dense = GroupedPointwiseInterleave(24, 144, channels_per_group=16)
    assert dense.groups == 1 and _params(dense) == 24 * 144 + 2 * 144


def test_2022_group_conv_pads_and_splits_the_remainder():
    # The example of the 2022 paper's code: 1020 inputs, 16 per group, 250 filters.
    conv = PaddedGroupConv(1020, 250, channels_per_group=16, norm_layer=None, activation_layer=None, bias=False)
    assert (conv.groups, conv.padded_channels, conv.remainder_inputs) == (64, 1024, 928)
    assert conv.main[0].out_channels == 192 and conv.remainder[0].out_channels == 58
    assert conv(torch.randn(2, 1020, 2, 2)).shape == (2, 250, 2, 2)


@pytest.mark.parametrize(("cin", "cout"), [(1020, 250), (100, 30), (24, 144), (672, 112), (20, 5)])
def test_2022_block_output_shape(cin, cout):
    block = PaddedGroupedPointwiseInterleave(cin, cout, channels_per_group=32, activation_layer=nn.SiLU)
    assert block(torch.randn(2, cin, 3, 3)).shape == (2, cout, 3, 3)


@pytest.mark.parametrize("name", KEFFNETS)
def test_registered_models_run_on_cifar_input(name):
    spec = get_spec(name)
    assert (spec.input_size, spec.num_classes, spec.family) == (32, 10, "keffnet")
    model = build_model(default_config(name)).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_grayscale_input():
    model = build_model(default_config("keffnet_b0_16ch", in_channels=1)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("name", ["keffnet_b0_16ch", "keffnet2_b0_32ch"])
def test_onnx_export_uses_reshape_transpose_and_matches_onnxruntime(name, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = build_model(default_config(name))
    images = np.random.default_rng(0).normal(size=(8, 3, 32, 32)).astype(np.float32)
    recalibrate_batchnorm(model, images)  # non-degenerate BN statistics; returns eval mode
    path = tmp_path / f"{name}.onnx"
    # As edgekit's export stage: legacy exporter, opset 17, dynamic batch axis.
    torch.onnx.export(model, (torch.from_numpy(images[:1]),), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})

    nodes = onnx.load(str(path)).graph.node
    ops = [node.op_type for node in nodes]
    assert not {"Gather", "GatherElements", "GatherND", "ScatterND", "ScatterElements", "Shape"} & set(ops)
    interleaves = sum(isinstance(m, ChannelInterleave) for m in model.modules())
    assert interleaves > 0 and ops.count("Transpose") == interleaves
    producer = {out: node.op_type for node in nodes for out in node.output}
    for node in nodes:
        if node.op_type == "Transpose":  # the interleave: Reshape -> Transpose -> Reshape
            assert producer[node.input[0]] == "Reshape"
            consumers = {n.op_type for n in nodes if node.output[0] in n.input}
            assert consumers <= ({"Reshape"} if name.startswith("keffnet_") else {"Reshape", "Slice"})

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = images[:3]  # another batch size than the export's
    (logits,) = session.run(None, {"input": x})
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-3, atol=1e-4)
