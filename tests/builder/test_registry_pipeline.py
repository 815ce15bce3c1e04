"""Every registered model goes through export -> simplify -> int8 -> ORT and OpenVINO.

The int8 model must load and run with each of ONNX Runtime's x86 kernel paths, whatever this CPU:
ORT's defaults and the exact option that x86 CPUs without VNNI need (ORT applies its rewrite on VNNI
CPUs too, so the load proves it for them; the graph check does where it does not). Each case records
the CPU it ran on (``record_property``; the run's summary prints it too).

Small inputs keep it fast: 32x32 for CIFAR-style models, 64x64 for ImageNet layouts. BatchNorm
statistics are re-estimated first: with the running stats of a fresh network every activation
decays towards zero and parity would be checked on near-constant outputs.
"""

import os
from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch

from edgekit.builder.export import check_parity, export_onnx
from edgekit.builder.simplify import simplify_onnx
from edgekit.models import build_model, default_config, get_spec, list_models
from edgekit.models.batchnorm import recalibrate_batchnorm
from edgekit.models.stats import model_stats
from edgekit.quantize.int8_graph import exact_option_collisions
from edgekit.quantize.openvino import convert_to_openvino, quantize_openvino
from edgekit.quantize.ort import calibration_ranges, quantize_with_ranges
from edgekit.runtimes.board_runner import EXACT_INT8_OPTIONS
from edgekit.runtimes.compare import compare_logits
from edgekit.runtimes.sessions import openvino_logits, ort_logits
from edgekit.runtimes.sessions import ort_session
from edgekit.targets.profiles import load_target

HEAVY_PARAMS = 30e6  # VGG-19 / ResNet-101 class: ~1 min each, marked slow
# torchvision's VGG ends in AdaptiveAvgPool2d(7), which the ONNX exporter supports only when the
# feature map is a multiple of 7: 224 px input.
FULL_SIZE_ONLY = {"vgg19"}


# One network per kind of block and per paper, so every graph pattern the int8 path meets runs on
# every commit: plain convs, inverted residuals, replication + split stem, grouped pointwise +
# interleave (both kEffNets), SE + SiLU, ghost modules (the BatchNorms after Concat that broke the
# exact x86 kernels), ghost + grouped 1x1 + shuffle, fire + depthwise with a channel multiplier,
# ghost squeeze, grouped + shuffle, DiCE. The rest of the registry is the sweep (``make sweep``,
# pytest -m sweep): the same test, about 10 minutes more on 2 cores.
REPRESENTATIVE = {"tiny_cnn", "small_cnn", "mobilenet_v2_cifar", "mobilenet_v2_rs_cifar", "keffnet_b0_16ch",
                  "keffnet2_b0_16ch", "efficientnet_b0_cifar", "resnet101_c32_col11", "resnet101_c32_col13",
                  "vgg19_c32_col6", "vgg19_c32_col8", "vgg19_c32_col9", "vgg19_c32_col13"}


def _cases():
    for name in list_models():
        spec = get_spec(name)
        params = model_stats(default_config(name, num_classes=10))["params"]  # meta device: no allocation
        marks = [pytest.mark.slow] if params > HEAVY_PARAMS else []
        if name not in REPRESENTATIVE:
            marks.append(pytest.mark.sweep)
        size = spec.input_size if name in FULL_SIZE_ONLY else min(spec.input_size, 64)
        yield pytest.param(name, size, id=name, marks=marks)


# Random weights with re-estimated BatchNorm amplify fp32 rounding differences between PyTorch and
# ORT kernels with depth: ResNet-101 measured 2.5e-4 of max |logit|, the DiCE VGG 1.2e-4 (trained
# networks: ~1e-5 to 9e-5, checked at the build's 1e-4 in tests/builder/test_export.py and benchmarks/).
TOLERANCE = 5e-4


# make sweep sets it: each network's int8 also runs on an emulated AVX2 CPU (qemu-x86_64 -cpu Haswell:
# no AVX-512, no VNNI) with edgekit's exact session, and must give this host's outputs.
EMULATE_AVX2 = "EDGEKIT_SWEEP_EMULATE_AVX2"


def _same_int8_on_an_emulated_avx2_cpu(model, images: np.ndarray, tmp_path) -> str:
    """Exact int8 is the model's integer arithmetic on any CPU: VNNI u8 x s8 here, u8 x u8 there. Only
    the float ops between DequantizeLinear and QuantizeLinear (BatchNorm after Concat, Sigmoid ...) may
    round differently with AVX2's float kernels, and a value that lands on a rounding boundary then
    moves by one step of the next quantizer: so the logits must agree bit for bit or within a few
    steps of the output quantizer's scale, and in top-1."""
    import shutil
    import subprocess
    import sys

    from edgekit.runtimes.emulation import INFER_DRIVER

    qemu = shutil.which("qemu-x86_64-static") or shutil.which("qemu-x86_64")
    assert qemu, "qemu-x86_64 is needed for the emulated AVX2 sweep (apt-get install qemu-user-static)"
    np.save(tmp_path / "images.npy", images)
    done = subprocess.run([qemu, "-cpu", "Haswell", sys.executable, str(INFER_DRIVER), str(model),
                           str(tmp_path / "images.npy"), str(tmp_path / "avx2.npy"), "--threads", "1"],
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    here, there = ort_logits(model, images, batch_size=1, threads=1), np.load(tmp_path / "avx2.npy")
    graph = onnx.load(str(model)).graph
    producer = next(n for n in graph.node if graph.output[0].name in n.output)
    scales = {t.name: t for t in graph.initializer}
    step = (float(onnx.numpy_helper.to_array(scales[producer.input[1]]))
            if producer.op_type == "DequantizeLinear" and producer.input[1] in scales else None)
    difference = float(np.abs(here - there).max())
    assert (here.argmax(1) == there.argmax(1)).all(), (difference, step)
    assert difference == 0 or (step is not None and difference <= 4 * step), (difference, step)
    return "bit-exact" if difference == 0 else f"max |diff| {difference:.3g} ({difference / step:.1f} output steps)"


@pytest.fixture(scope="module")
def host_cpu() -> str:
    from tests.conftest import this_cpu

    return ", ".join(f"{key}={value}" for key, value in this_cpu().items())


@pytest.mark.parametrize("name,size", list(_cases()))
def test_registered_model_exports_quantizes_and_runs_everywhere(name, size, tmp_path, record_property, host_cpu):
    record_property("cpu", host_cpu)
    tolerance = TOLERANCE
    torch.manual_seed(0)
    config = default_config(name, num_classes=10, input_size=size)
    model = build_model(config)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((24, config.in_channels, size, size), dtype=np.float32)
    recalibrate_batchnorm(model, images[:16])

    raw, fp32 = tmp_path / "raw.onnx", tmp_path / "fp32.onnx"
    export_onnx(model, images, raw)
    simplified = simplify_onnx(raw, fp32)
    assert simplified.applied, simplified
    parity = check_parity(model, fp32, images[16:], tolerance=tolerance, input_source="random normal")
    assert parity.passed

    # The cpu profile's 7-bit weights, and 8-bit ones (the planner's other width; the one that ORT's
    # exact x86 kernels rewrite, and so the one that broke loading): both from one calibration.
    int8 = tmp_path / "int8.onnx"
    settings = load_target("cpu").quantization
    ranges = calibration_ranges(fp32, images[:16], settings.calibration_method, tmp_path)
    quantize_with_ranges(fp32, int8, ranges, settings)
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    if any(type(m).__name__ == "ChannelInterleave" for m in model.modules()):
        # The channel interleave must survive simplification and int8 as plain Reshape/Transpose.
        assert "Transpose" in ops and not {"Gather", "GatherElements", "GatherND", "ScatterND"} & ops
    ort_int8 = ort_logits(int8, images[16:])
    assert ort_int8.shape == (8, 10) and np.isfinite(ort_int8).all()
    eight_bit = tmp_path / "int8_8bit.onnx"
    assert quantize_with_ranges(fp32, eight_bit, ranges, replace(settings, reduce_range=False))["weight_bits"] == 8
    for model_file in (int8, eight_bit):
        # Every x86 kernel path loads it: the default one, and the exact one whatever this CPU needs.
        assert exact_option_collisions(onnx.load(str(model_file))) == []
        ort_session(model_file, config=EXACT_INT8_OPTIONS)
        assert np.isfinite(ort_logits(model_file, images[16:], kernels="ort-default")).all()
    if os.environ.get(EMULATE_AVX2) == "1":
        record_property("avx2_emulated", _same_int8_on_an_emulated_avx2_cpu(eight_bit, images[16:18], tmp_path))

    # The openvino target's path: fp32 IR (parity with ORT fp32), then NNCF int8 on the IR. (Feeding
    # ORT's QDQ ONNX to OpenVINO 2026.4 segfaults for resnet101_c32_col10; edgekit never does that.)
    ir = tmp_path / "fp32.xml"
    convert_to_openvino(fp32, ir)
    openvino = compare_logits(ort_logits(fp32, images[16:]), openvino_logits(ir, images[16:], precision="f32"))
    assert openvino["max_normalised_diff"] < tolerance, openvino
    quantize_openvino(ir, tmp_path / "int8.xml", images[:8], load_target("openvino").quantization)
    ov_int8 = openvino_logits(tmp_path / "int8.xml", images[16:], precision="f32")
    assert ov_int8.shape == (8, 10) and np.isfinite(ov_int8).all()
