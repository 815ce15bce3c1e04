"""Every registered model goes through export -> simplify -> int8 -> ORT and OpenVINO.

Small inputs keep it fast: 32x32 for CIFAR-style models, 64x64 for ImageNet layouts. BatchNorm
statistics are re-estimated first: with the running stats of a fresh network every activation
decays towards zero and parity would be checked on near-constant outputs.
"""

import numpy as np
import onnx
import pytest
import torch

from edgekit.models import build_model, default_config, get_spec, list_models
from edgekit.models.batchnorm import recalibrate_batchnorm
from edgekit.runtimes import openvino_logits, ort_logits
from edgekit.stages.export import check_parity, compare_logits, export_onnx
from edgekit.stages.quantize_ort import quantize_onnx_static
from edgekit.stages.simplify import simplify_onnx
from edgekit.targets import load_target

HEAVY_PARAMS = 30e6  # VGG-19 / ResNet-101 class: ~1 min each, marked slow
# torchvision's VGG ends in AdaptiveAvgPool2d(7), which the ONNX exporter supports only when the
# feature map is a multiple of 7: 224 px input.
FULL_SIZE_ONLY = {"vgg19"}


def _cases():
    for name in list_models():
        spec = get_spec(name)
        params = sum(p.numel() for p in build_model(default_config(name, num_classes=10)).parameters())
        marks = [pytest.mark.slow] if params > HEAVY_PARAMS else []
        size = spec.input_size if name in FULL_SIZE_ONLY else min(spec.input_size, 64)
        # fp32 rounding differences between PyTorch and ORT kernels grow with depth: 101 random
        # layers measured 2.5e-4 of max |logit| (trained ResNet-101 ~9e-5), still far from a bug.
        tolerance = 1e-3 if params > HEAVY_PARAMS else 1e-4
        yield pytest.param(name, size, tolerance, id=name, marks=marks)


@pytest.mark.parametrize("name,size,tolerance", list(_cases()))
def test_registered_model_exports_quantizes_and_runs_everywhere(name, size, tolerance, tmp_path):
    torch.manual_seed(0)
    config = default_config(name, num_classes=10, input_size=size)
    model = build_model(config)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((24, config.in_channels, size, size), dtype=np.float32)
    recalibrate_batchnorm(model, images[:16])

    raw, fp32 = tmp_path / "raw.onnx", tmp_path / "fp32.onnx"
    export_onnx(model, images, raw)
    simplified = simplify_onnx(raw, fp32)
    assert simplified["applied"], simplified
    parity = check_parity(model, fp32, images[16:], tolerance=tolerance, input_source="random normal")
    assert parity["passed"]

    openvino = compare_logits(ort_logits(fp32, images[16:]), openvino_logits(fp32, images[16:], precision="f32"))
    assert openvino["max_normalised_diff"] < tolerance, openvino

    int8 = tmp_path / "int8.onnx"
    quantize_onnx_static(fp32, int8, images[:16], load_target("cpu").quantization)
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    ort_int8 = ort_logits(int8, images[16:])
    ov_int8 = openvino_logits(int8, images[16:], precision="f32")
    assert ort_int8.shape == ov_int8.shape == (8, 10)
    assert np.isfinite(ort_int8).all() and np.isfinite(ov_int8).all()
