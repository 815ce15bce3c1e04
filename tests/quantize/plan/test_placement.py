"""NNCF-like placement rules on a real EfficientNet-style graph (kEffNet: SiLU, squeeze-excitation)."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def keffnet_onnx(tmp_path_factory):
    import onnx

    from edgekit.models import build_model, default_config
    from edgekit.builder.export import export_onnx

    model = build_model(default_config("keffnet_b0_16ch", num_classes=10)).eval()
    path = tmp_path_factory.mktemp("keffnet") / "keffnet.onnx"
    export_onnx(model, np.zeros((1, 3, 32, 32), dtype=np.float32), path)
    return onnx.load(str(path))


def test_sigmoids_their_gated_muls_and_se_pools_stay_fp32(keffnet_onnx):
    from edgekit.quantize.plan.placement import nncf_like_exclusions

    nodes = {node.name: node for node in keffnet_onnx.graph.node}
    excluded = nncf_like_exclusions(keffnet_onnx)
    sigmoids = [n for n in nodes.values() if n.op_type == "Sigmoid"]
    assert sigmoids and all(s.name in excluded for s in sigmoids)
    sigmoid_outputs = {s.output[0] for s in sigmoids}
    gates = [n for n in nodes.values() if n.op_type == "Mul" and sigmoid_outputs & set(n.input)]
    assert gates and all(g.name in excluded for g in gates)
    pools = [n for n in nodes.values() if n.op_type in ("GlobalAveragePool", "ReduceMean")]
    se_pools = [name for name in excluded if nodes[name].op_type in ("GlobalAveragePool", "ReduceMean")]
    # Every SE block opens with a pool; the classifier's final pool feeds no Sigmoid and stays quantized.
    assert se_pools and len(se_pools) == len(pools) - 1
    assert not any(nodes[name].op_type == "Conv" for name in excluded)
