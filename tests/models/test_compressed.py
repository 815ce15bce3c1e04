"""The compression paper's ResNet-101 / VGG-19 columns: sizes against its tables, forward, ONNX export."""

from __future__ import annotations

import collections
import functools

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import edgekit.models.compressed_resnet as compressed_resnet
import edgekit.models.compressed_vgg as compressed_vgg
from edgekit.models import build_model, default_config, get_spec, list_models
from edgekit.models.layers.channel_interleave import ChannelInterleave
from edgekit.models.layers.dice import DiCE
from edgekit.models.layers.ghost import GhostModule
from edgekit.models.layers.grouped_pointwise_shuffle import GroupedPointwiseShuffle

# Sobolewski & Szyc (DepCoS 2023; IJET 2024 follow-up), the authors' tables:
# column -> (parameters in M, FLOPs in M). Their FLOPs are fvcore counts, i.e. multiply-adds.
RESNET_CIFAR10 = {
    1: (42.513, 2520.22), 2: (59.061, 3480.01), 3: (35.397, 2141.58), 4: (21.240, 1279.53),
    5: (7.536, 420.75), 6: (2.255, 79.21), 7: (1.187, 62.39), 8: (0.873, 57.37), 9: (0.869, 53.00),
    10: (0.450, 32.83), 11: (0.400, 29.76), 12: (1.424, 31.48), 13: (0.151, 12.80), 14: (1.174, 14.52),
}
# The DiCE column appears only in the follow-up's CIFAR-100 table.
RESNET_CIFAR100 = {15: (3.007, 160.40)}
VGG_CIFAR100 = {
    1: (39.328, 418.02), 2: (20.087, 398.79), 3: (13.150, 256.08), 4: (2.332, 46.8), 5: (1.848, 40.27),
    6: (0.520, 11.04), 7: (0.520, 11.19), 8: (0.198, 4.99), 9: (0.443, 9.62), 10: (0.388, 8.73),
    11: (1.588, 10.23), 12: (1.398, 6.49),
}
# VGG column 13 (DiCE) has no trustworthy number: the follow-up's VGG table repeats its ResNet table.

PARAMS_REL = 0.02
FLOPS_REL = 0.25  # the paper's counter also counts BN and pooling; ours counts convs and matmuls

CASES = (
    [(f"resnet101_c32_col{c}", 10, *v) for c, v in RESNET_CIFAR10.items()]
    + [(f"resnet101_c32_col{c}", 100, *v) for c, v in RESNET_CIFAR100.items()]
    + [(f"vgg19_c32_col{c}", 100, *v) for c, v in VGG_CIFAR100.items()]
)
OURS = list_models("resnet101_c32_col*") + list_models("vgg19_c32_col*")


@pytest.fixture(autouse=True)
def _one_thread():
    """Batch-2 forwards of small nets gain nothing from threads, and spin-waiting threads on a busy
    machine make them many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def _measure(name: str, num_classes: int) -> tuple[int, float]:
    """(parameters, multiply-adds) of one 3x32x32 image; built on the meta device, so no memory or init."""
    with torch.device("meta"):
        model = build_model(default_config(name, num_classes=num_classes))
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, 3, 32, 32))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() / 2


@pytest.mark.parametrize(("name", "num_classes", "params_m", "flops_m"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_parameters_match_the_paper(name, num_classes, params_m, flops_m):
    measured, _ = _measure(name, num_classes)
    assert measured == pytest.approx(params_m * 1e6, rel=PARAMS_REL), f"measured {measured}, paper {params_m} M"


@pytest.mark.parametrize(("name", "num_classes", "params_m", "flops_m"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_multiply_adds_are_near_the_paper(name, num_classes, params_m, flops_m):
    _, measured = _measure(name, num_classes)
    assert measured == pytest.approx(flops_m * 1e6, rel=FLOPS_REL), f"measured {measured / 1e6:.2f} M, paper {flops_m} M"


def test_every_paper_column_is_registered():
    assert OURS == sorted([f"resnet101_c32_col{c.col}" for c in compressed_resnet.COLUMNS]
                          + [f"vgg19_c32_col{c.col}" for c in compressed_vgg.COLUMNS])
    assert len(OURS) == 15 + 13


@pytest.mark.parametrize("name", OURS)
def test_forward_on_a_cifar_batch(name):
    spec = get_spec(name)
    assert (spec.input_size, spec.num_classes) == (32, 10)
    assert f"column {name.rsplit('col', 1)[1]}:" in spec.description
    model = build_model(default_config(name)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_columns_are_cumulative_where_the_paper_says_so():
    col = compressed_resnet.COLUMNS_BY_NUMBER
    assert (col[4].spatial, col[4].stem, col[4].groups) == ("depthwise", "separable", 1)
    assert (col[5].spatial, col[5].groups) == ("depthwise", 4)
    assert col[9].stem_width == 10 and col[13].groups == 4 and col[14].se and not col[13].se


def test_channel_shuffle_is_the_shufflenet_interleave():
    x = torch.arange(12.0).view(1, 12, 1, 1)
    # 3 groups of 4 -> first channel of each group, then the second, ...
    assert ChannelInterleave.of_groups(12, 3)(x).flatten().tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    with pytest.raises(ValueError, match="divisible"):
        ChannelInterleave.of_groups(10, 4)


def test_pointwise_convs_are_grouped_only_above_24_inputs():
    assert GroupedPointwiseShuffle(24, 32).groups == 1
    wide = GroupedPointwiseShuffle(32, 64)
    assert wide.groups == 4 and isinstance(wide[-1], ChannelInterleave)
    assert GroupedPointwiseShuffle(16, 32, ungrouped_upto=0).groups == 4


def test_ghost_module_keeps_odd_widths():
    assert GhostModule(8, 11)(torch.randn(1, 8, 4, 4)).shape == (1, 11, 4, 4)


def test_dice_refuses_a_size_it_was_not_built_for():
    with pytest.raises(ValueError, match="built for 8x8"):
        DiCE(16, 8, height=8, width=8)(torch.randn(1, 16, 16, 16))


def test_shuffle_exports_to_onnx_as_reshape_transpose_and_matches(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = build_model(default_config("vgg19_c32_col8"))
    with torch.no_grad():  # a few train-mode batches so BN running statistics are not the identity
        for _ in range(3):
            model(torch.randn(8, 3, 32, 32))
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    path = tmp_path / "shuffle.onnx"
    torch.onnx.export(model, x, str(path), dynamo=False, opset_version=17)

    ops = collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)
    shuffles = sum(isinstance(m, ChannelInterleave) and m.groups > 1 for m in model.modules())
    assert shuffles > 0 and ops["Transpose"] == shuffles and ops["Reshape"] == 2 * shuffles
    assert not {"Gather", "GatherElements", "ChannelShuffle"} & set(ops)

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-4


def test_unknown_column_names_the_known_ones():
    with pytest.raises(ValueError, match=r"columns are \[1, 2"):
        compressed_resnet.compressed_resnet101(16)
    assert isinstance(compressed_vgg.compressed_vgg19(8, num_classes=100), nn.Module)
