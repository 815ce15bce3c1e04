"""Bring your own model: torchvision:NAME and file.py:function through export, parity, int8 and
bench (the PyTorch reference is rebuilt from the manifest's spec in the bench worker)."""

from edgekit.artifact.folder import read_manifest
from edgekit.benchmark.run import bench_artifact
from edgekit.builder.pipeline import BuildOptions, build_artifact
from edgekit.core.hashing import sha256_file

from ..models.test_user_module import write_net

SMALL = BuildOptions(calib_size=16, check_latency=False)


def build_and_bench(model, out, pattern_data, **model_options):
    from dataclasses import replace

    build_artifact(model, "cpu", out, num_classes=4, input_size=32, classes=str(pattern_data["train"]),
                   options=replace(SMALL, calib=pattern_data["train"]), **model_options)
    report = bench_artifact(out, data=pattern_data["val"], limit=16, runs=3, warmup=1)
    assert all(row.get("ok") for row in report["results"]), report["results"]
    assert {row["runtime"] for row in report["results"]} == {"pytorch", "onnxruntime"}
    return read_manifest(out)


def test_a_torchvision_network_builds_and_benches(pattern_data, tmp_path):
    manifest = build_and_bench("torchvision:mobilenet_v3_small", tmp_path / "art", pattern_data)
    assert manifest.model.config.name == "torchvision:mobilenet_v3_small" and manifest.model.config.num_classes == 4
    assert manifest.classes == ("blob", "checker", "horizontal", "vertical")  # --classes, from the folder
    # MobileNet_V3_Small_Weights.DEFAULT: resize 256, crop 224, bilinear; scaled to the 32 px input.
    assert (manifest.preprocessing.input_size, manifest.preprocessing.resize) == ((32, 32), 37)
    assert manifest.preprocessing.interpolation == "bilinear"
    assert manifest.export.parity.passed and manifest.quantization.settings


def test_a_user_module_builds_and_benches(pattern_data, tmp_path):
    path = write_net(tmp_path / "src")
    manifest = build_and_bench(f"{path}:build", tmp_path / "art", pattern_data)
    config = manifest.model.config
    # How to rebuild it: the spec string and the source file's sha256.
    assert config.name == f"{path}:build" and config.options == {"source_sha256": sha256_file(path)}
    assert manifest.preprocessing.input_size == (32, 32)
