import numpy as np
import pytest

from edgekit.runtimes import ort_logits
from edgekit.stages.export import export_onnx
from edgekit.stages.quantize_ort import calibration_ranges, quantize_onnx_static
from edgekit.targets import load_target


@pytest.fixture(scope="module")
def fp32_onnx(trained_tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("q") / "fp32.onnx"
    export_onnx(trained_tiny["model"], trained_tiny["x_val"], path)
    return path


def test_int8_agrees_with_fp32_on_held_out_images(fp32_onnx, trained_tiny, tmp_path):
    calibration = trained_tiny["x_val"][:32]
    int8 = tmp_path / "int8.onnx"
    record = quantize_onnx_static(fp32_onnx, int8, calibration, load_target("cpu").quantization)
    assert record["activation_type"] == "uint8" and record["per_channel"] is True
    x, y = trained_tiny["x_val"], trained_tiny["y_val"]
    fp32_top1, int8_top1 = ort_logits(fp32_onnx, x).argmax(1), ort_logits(int8, x).argmax(1)
    assert (fp32_top1 == int8_top1).mean() >= 0.95
    assert (int8_top1 == y).mean() >= (fp32_top1 == y).mean() - 0.05
    assert int8.stat().st_size < fp32_onnx.stat().st_size / 2


def test_int8_graph_is_qdq(fp32_onnx, trained_tiny, tmp_path):
    import onnx

    int8 = tmp_path / "int8.onnx"
    quantize_onnx_static(fp32_onnx, int8, trained_tiny["x_val"][:16], load_target("cpu").quantization)
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_entropy_calibration_is_not_minmax_in_disguise(fp32_onnx, trained_tiny, tmp_path):
    """quantize_static(Entropy) equals MinMax in this ORT; our calibration must clip some ranges."""
    images = trained_tiny["x_val"][:48]
    _, minmax = calibration_ranges(fp32_onnx, images, "minmax", tmp_path)
    _, entropy = calibration_ranges(fp32_onnx, images, "entropy", tmp_path)
    narrower = 0
    for name in minmax.keys():
        low, high = (float(np.asarray(v).squeeze()) for v in minmax[name].range_value)
        e_low, e_high = (float(np.asarray(v).squeeze()) for v in entropy[name].range_value)
        assert e_low >= low - 1e-6 and e_high <= high + 1e-6  # entropy only ever clips
        narrower += e_high < high * 0.99
    assert narrower > 0


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_other_calibration_methods_quantize(fp32_onnx, trained_tiny, tmp_path, method):
    from dataclasses import replace

    settings = replace(load_target("cpu").quantization, calibration_method=method)
    record = quantize_onnx_static(fp32_onnx, tmp_path / "q.onnx", trained_tiny["x_val"][:32], settings)
    assert record["calibration_method"] == method and "calibration_options" in record
    x = trained_tiny["x_val"]
    agreement = (ort_logits(fp32_onnx, x).argmax(1) == ort_logits(tmp_path / "q.onnx", x).argmax(1)).mean()
    assert agreement >= 0.9
