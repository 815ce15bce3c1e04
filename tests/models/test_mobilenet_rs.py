import numpy as np
import pytest
import torch

import edgekit.models.mobilenet_rs  # noqa: F401  (registers mobilenet_v2_rs*)
from edgekit.core.errors import EdgekitError
from edgekit.models import build_model, default_config, read_checkpoint, save_checkpoint
from edgekit.models.layers.split_stem import SplitStem, validate_partition
from edgekit.search.space import describe, eligible_blocks, split_positions, with_replication, with_split
from edgekit.search.weight_transfer import transfer_weights

CIFAR = "mobilenet_v2_rs_cifar"
ELIGIBLE = [3, 5, 6, 8, 9, 10, 12, 13, 15, 16]


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _rgbd(**options):
    return default_config(CIFAR, in_channels=4, options=options)


def _warm_bn(model: torch.nn.Module, channels: int) -> torch.nn.Module:
    """A few train-mode passes so BN running statistics are not the 0/1 of a fresh model."""
    torch.manual_seed(0)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, channels, 16, 16))
    return model.eval()


def _same_layout(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


def test_without_options_it_is_vanilla_mobilenet_v2():
    cifar = build_model(default_config(CIFAR))
    assert _params(cifar) == 2_236_682
    assert _same_layout(cifar, build_model(default_config("mobilenet_v2_cifar")))
    assert _params(build_model(default_config("mobilenet_v2_rs"))) == 3_504_872


def test_replication_adds_exactly_one_block_and_transfer_copies_it():
    parent = _warm_bn(build_model(default_config(CIFAR)), 3)
    config = with_replication(with_replication(default_config(CIFAR), 5), 12)
    assert config.options == {"replications": [5, 12]}
    child = build_model(config)
    blocks = _params(parent.features[5]) + _params(parent.features[12])
    assert _params(child) == _params(parent) + blocks

    counts = transfer_weights(parent, child)
    assert counts["fresh"] == 0 and counts["sliced"] == 0
    p_state, c_state = parent.state_dict(), child.state_dict()
    for key, value in c_state.items():
        for index in (5, 12):
            if key.startswith(f"features.{index}_r1."):
                source = key.replace(f"features.{index}_r1.", f"features.{index}.")
                assert torch.equal(value, p_state[source]), key
                break
        else:
            assert torch.equal(value, p_state[key]), key


def test_a_second_replica_copies_the_parents_last_copy():
    parent = build_model(_rgbd(replications=[5]))
    child = build_model(_rgbd(replications=[5, 5]))
    transfer_weights(parent, child)
    weight = "conv.0.0.weight"
    assert torch.equal(child.features.get_submodule("5_r2").get_parameter(weight),
                       parent.features.get_submodule("5_r1").get_parameter(weight))


def test_ineligible_replication_names_the_eligible_blocks():
    assert eligible_blocks(default_config(CIFAR)) == ELIGIBLE
    assert eligible_blocks(with_replication(default_config(CIFAR), 5)) == ELIGIBLE
    with pytest.raises(EdgekitError, match=r"block 4 cannot .* eligible blocks .*\[3, 5, 6"):
        build_model(default_config(CIFAR, options={"replications": [4]}))
    with pytest.raises(EdgekitError, match="eligible blocks"):
        with_replication(default_config("mobilenet_v2_rs"), 1)


@pytest.mark.parametrize("merge", ["concat_half", "concat"])
def test_split_rgb_d_forwards(merge):
    config = with_split(default_config(CIFAR, in_channels=4), 3, [[0, 1, 2], [3]], merge)
    model = build_model(config).eval()
    assert isinstance(model.features[0], SplitStem)
    with torch.no_grad():
        assert model(torch.randn(2, 4, 32, 32)).shape == (2, 10)
    vanilla = _params(build_model(default_config(CIFAR, in_channels=4)))
    change = (_params(model) - vanilla) / vanilla
    print(f"{describe(config)}: {_params(model):,} params vs vanilla {vanilla:,} ({change:+.2%})")
    if merge == "concat_half":
        assert abs(change) < 0.05
    else:
        # Each branch is full width; the merge block's expand conv takes 2 x 24 channels.
        assert model.features.get_submodule("3").conv[0][0].in_channels == 48
        assert change > 0


def test_per_channel_split_of_rgb_uses_one_branch_per_channel():
    config = with_split(default_config(CIFAR), 2)
    assert config.options["partition"] == [[0], [1], [2]]
    model = build_model(config).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert describe(config) == "split@2 r|g|b half"


@pytest.mark.parametrize("partition, message", [
    ([[0, 1, 2], [2, 3]], "exactly once"),
    ([[0, 1, 2]], "at least 2"),
    ([[0, 1], [2, 4]], "outside"),
    ([[0, 1], []], "non-empty"),
])
def test_bad_partitions_are_one_line_errors(partition, message):
    with pytest.raises(EdgekitError, match=message) as caught:
        build_model(_rgbd(split_at=2, partition=partition))
    assert "\n" not in str(caught.value)


def test_option_errors():
    with pytest.raises(EdgekitError, match="split_at must be"):
        build_model(_rgbd(split_at=19))
    with pytest.raises(EdgekitError, match="merge must be"):
        with_split(_rgbd(), 2, merge="sum")
    with pytest.raises(EdgekitError, match="without split_at"):
        build_model(_rgbd(partition=[[0, 1, 2], [3]]))
    with pytest.raises(EdgekitError, match="mobilenet_v2_rs_cifar"):
        eligible_blocks(default_config("mobilenet_v2_cifar"))


def test_config_helpers():
    base = _rgbd()
    config = with_split(with_replication(with_replication(with_replication(base, 12), 5), 5), 3)
    assert describe(config) == "rep[5,5,12] split@3 rgb|d half"
    assert describe(base) == "vanilla"
    assert with_split(config, 0).options == {"replications": [5, 5, 12]}
    assert split_positions(config) == list(range(1, 19))
    assert split_positions(default_config(CIFAR, in_channels=1)) == []
    # Adding a replication keeps the split.
    assert with_replication(config, 6).options["split_at"] == 3


def test_checkpoint_round_trip_rebuilds_the_architecture(tmp_path):
    config = with_split(with_replication(_rgbd(), 8), 4, merge="concat")
    model = build_model(config)
    path = save_checkpoint(tmp_path / "rs.pt", config, model.state_dict())
    checkpoint = read_checkpoint(path)
    loaded_config, state = checkpoint.config, checkpoint.state_dict
    assert loaded_config == config
    rebuilt = build_model(loaded_config)
    assert _same_layout(model, rebuilt)
    rebuilt.load_state_dict(state)


def test_transfer_into_split_slices_the_parents_layers():
    parent = _warm_bn(build_model(_rgbd(replications=[3])), 4)
    child = build_model(with_split(with_replication(_rgbd(), 3), 4))
    counts = transfer_weights(parent, child)
    assert counts["fresh"] == 0 and counts["sliced"] > 0
    branches, p = child.features[0].branches, parent.features
    # Branch 1 (depth) stem: input channel 3, output channels 16..31 of the parent's stem.
    assert torch.equal(branches[1].get_submodule("0.0").weight, p[0][0].weight[16:32, 3:4])
    assert torch.equal(branches[0].get_submodule("0.0").weight, p[0][0].weight[0:16, 0:3])
    # Layer 3 (24 -> 24, hidden 144) in branch 1 has 8 channels: 16..23 in, hidden 96..143.
    replica = branches[1].get_submodule("3_r1")
    assert torch.equal(replica.conv[0][0].weight, p.get_submodule("3_r1").conv[0][0].weight[96:144, 16:24])
    assert torch.equal(replica.conv[3].running_var, p.get_submodule("3_r1").conv[3].running_var[16:24])
    for key, value in child.state_dict().items():
        if not key.startswith("features.split."):
            assert torch.equal(value, parent.state_dict()[key]), key


def test_transfer_into_concat_widens_the_merge_layer():
    parent = build_model(_rgbd())
    child = build_model(with_split(_rgbd(), 3, merge="concat"))
    counts = transfer_weights(parent, child)
    assert counts["fresh"] == 0
    weight = parent.features[3].conv[0][0].weight
    assert torch.allclose(child.features.get_submodule("3").conv[0][0].weight, torch.cat([weight, weight], 1) / 2)
    assert torch.equal(child.features[0].branches[1].get_submodule("2.conv.2").weight, parent.features[2].conv[2].weight)
    # Going back merges the two halves of the widened conv into the vanilla one.
    back = build_model(_rgbd())
    transfer_weights(child, back)
    assert torch.allclose(back.features[3].conv[0][0].weight, weight)


def test_transfer_between_split_models_copies_branch_to_branch():
    config = with_split(with_replication(_rgbd(), 5), 3)
    parent, child = _warm_bn(build_model(config), 4), build_model(config)
    assert transfer_weights(parent, child) == {"copied": len(child.state_dict()), "sliced": 0, "fresh": 0}
    x = torch.randn(2, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(parent(x), child.eval()(x))


def test_transfer_from_a_plain_torchvision_parent():
    parent = build_model(default_config("mobilenet_v2_cifar"))
    child = build_model(with_replication(default_config(CIFAR), 16))
    assert transfer_weights(parent, child)["fresh"] == 0


def test_non_contiguous_partition_gathers():
    model = _warm_bn(build_model(_rgbd(split_at=1, partition=[[0, 3], [1, 2]])), 4)
    x = torch.randn(2, 4, 32, 32)
    branches = model.features[0].branches
    with torch.no_grad():
        expected = torch.cat([branches[0](x[:, [0, 3]]), branches[1](x[:, [1, 2]])], 1)
        assert torch.equal(model.features[0](x), expected)
    assert validate_partition([[0, 3], [1, 2]], 4) == ((0, 3), (1, 2))


def test_split_replicated_model_exports_to_onnx_runtime_and_openvino(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    config = with_split(with_replication(with_replication(_rgbd(), 3), 5), 4)
    model = _warm_bn(build_model(config), 4)
    x = torch.randn(2, 4, 32, 32)
    path = tmp_path / "rs.onnx"
    torch.onnx.export(model, x, path, dynamo=False, opset_version=17)
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert {"Slice", "Concat"} <= ops and "Gather" not in ops
    with torch.no_grad():
        expected = model(x).numpy()
    tolerance = 1e-4 * np.abs(expected).max()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert np.abs(got - expected).max() <= tolerance
    openvino = pytest.importorskip("openvino")
    compiled = openvino.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert np.abs(compiled(x.numpy())[0] - expected).max() <= tolerance
