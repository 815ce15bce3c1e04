import json

import pytest

from edgekit.artifact.folder import MANIFEST, read_manifest, sha256_file
from edgekit.artifact.manifest import LatencyCheck, ModelEntry, QuantizationRecord
from edgekit.artifact.records import LogitComparison
from edgekit.builder.pipeline import _recommend
from edgekit.core.errors import EdgekitError

from ..conftest import build_tiny


def test_cpu_artifact_has_models_manifest_and_report(cpu_artifact):
    manifest = read_manifest(cpu_artifact).to_dict()
    files = {m["file"]: m for m in manifest["models"]}
    assert set(files) == {"model_fp32.pt", "model_fp32.onnx", "model_int8.onnx"}
    assert files["model_int8.onnx"]["precision"] == "int8"
    assert manifest["input"]["shape"] == [1, 3, 32, 32] and manifest["input"]["layout"] == "NCHW"
    assert manifest["preprocessing"]["mean"] == [0.5, 0.5, 0.5]
    assert manifest["quantization"]["activation_type"] == "uint8"
    assert manifest["quantization"]["calibration"]["images"] == 64
    assert len(manifest["quantization"]["calibration"]["sha256"]) == 64
    assert manifest["export"]["parity"]["passed"] is True
    assert manifest["quantization"]["int8_vs_fp32"]["top1_agreement"] >= 0.9
    assert manifest["latency_check"]["measured"] is True
    for package in ("torch", "onnx", "onnxruntime", "openvino", "edgekit"):
        assert manifest["versions"][package]
    report = (cpu_artifact / "REPORT.md").read_text()
    assert "Recommended for deployment" in report
    # ... and where every number of the build came from, with which int8 kernels.
    # The cpu profile's 7-bit weights: exact with ORT's default session on every x86 CPU.
    assert files["model_int8.onnx"]["x86_int8_kernels"] == "exact" and manifest["quantization"]["weight_bits"] == 7
    assert "no session option is needed" in report
    assert manifest["build_host"]["arch"] and "Measured on:" in report


def test_manifest_hashes_match_every_file(cpu_artifact):
    manifest = json.loads((cpu_artifact / MANIFEST).read_text())
    on_disk = {p.name for p in cpu_artifact.iterdir()} - {MANIFEST}
    assert set(manifest["files"]) == on_disk
    for name, record in manifest["files"].items():
        assert sha256_file(cpu_artifact / name) == record["sha256"]
        assert (cpu_artifact / name).stat().st_size == record["bytes"]


def test_tampered_artifact_is_detected(cpu_artifact, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(cpu_artifact, copy)
    with (copy / "model_int8.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(EdgekitError, match="does not match its sha256"):
        read_manifest(copy)


def test_openvino_artifact_has_ir_models_pinned_to_f32(openvino_artifact):
    manifest = read_manifest(openvino_artifact).to_dict()
    files = {m["file"]: m for m in manifest["models"]}
    assert {"openvino/model_fp32.xml", "openvino/model_int8.xml"} <= set(files)
    assert (openvino_artifact / "openvino" / "model_int8.bin").is_file()
    assert manifest["target"]["inference_precision"] == "f32"
    assert manifest["quantization"]["backend"] == "nncf"
    assert manifest["quantization"]["int8_vs_fp32"]["top1_agreement"] >= 0.9


def test_rpi4_artifact_explains_its_settings_and_is_not_timed_here(rpi4_artifact):
    out = rpi4_artifact
    manifest = read_manifest(out).to_dict()
    assert manifest["target"]["arch"] == "aarch64"
    assert "dot-product" in manifest["target"]["rationale"]["int8_expectation"]
    assert manifest["latency_check"]["measured"] is False
    report = (out / "REPORT.md").read_text()
    assert "Not measured" in report and "dot-product" in report
    # Both models ship: fp32 is the fallback where int8 does not pay off.
    assert {"model_fp32.onnx", "model_int8.onnx"} <= {m["file"] for m in manifest["models"]}


def test_target_without_int8_dot_product_reports_what_int8_buys_and_costs(rpi4_artifact, cpu_artifact):
    tradeoff = read_manifest(rpi4_artifact).to_dict()["int8_tradeoff"]
    assert tradeoff["fp32_bytes"] == (rpi4_artifact / "model_fp32.onnx").stat().st_size
    assert tradeoff["int8_bytes"] == (rpi4_artifact / "model_int8.onnx").stat().st_size
    assert tradeoff["size_ratio"] > 2.5  # tiny_cnn's int8 file is ~3x smaller (QDQ scales cost a little)
    section = (rpi4_artifact / "REPORT.md").read_text().split("## int8 on a CPU without int8 dot-product")[1]
    assert "What int8 buys" in section and "What it may cost" in section and "`model_fp32.onnx`" in section
    assert "x64quantprecision" not in (rpi4_artifact / "REPORT.md").read_text()  # an x86-only matter
    # x86 with VNNI/AMX is a dot-product CPU: no such section there.
    assert "int8_tradeoff" not in read_manifest(cpu_artifact).to_dict()


def test_failed_build_leaves_nothing_behind(pattern_data, trained_tiny, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(EdgekitError, match="parity"):
        build_tiny("cpu", out, pattern_data, trained_tiny, parity_tolerance=0.0)
    assert list(tmp_path.iterdir()) == []


def test_failed_rebuild_keeps_the_previous_artifact(cpu_artifact, pattern_data, trained_tiny):
    before = (cpu_artifact / MANIFEST).read_text()
    with pytest.raises(EdgekitError):
        build_tiny("cpu", cpu_artifact, pattern_data, trained_tiny, parity_tolerance=0.0, force=True)
    assert (cpu_artifact / MANIFEST).read_text() == before
    assert not [p for p in cpu_artifact.parent.iterdir() if p.name.endswith(".partial")]


def test_existing_output_needs_force(cpu_artifact, pattern_data, trained_tiny):
    with pytest.raises(EdgekitError, match="already exists"):
        build_tiny("cpu", cpu_artifact, pattern_data, trained_tiny)


def test_fp32_only_needs_no_calibration(pattern_data, trained_tiny, tmp_path):
    out = build_tiny("cpu", tmp_path / "f", pattern_data, trained_tiny, calib=None, fp32_only=True,
                     check_latency=False)
    manifest = read_manifest(out).to_dict()
    assert [m["precision"] for m in manifest["models"]] == ["fp32", "fp32"]
    assert manifest["recommended_model"] == "model_fp32.onnx"


def test_fp32_only_for_openvino_ships_the_ir(pattern_data, trained_tiny, tmp_path):
    """The target's backend converts the fp32 model to its format on every build, not only with int8."""
    out = build_tiny("openvino", tmp_path / "f", pattern_data, trained_tiny, calib=None, fp32_only=True,
                     check_latency=False)
    manifest = read_manifest(out)
    assert [(m.runtime, m.precision) for m in manifest.models_for("openvino")] == [("openvino", "fp32")]
    assert manifest.recommended_model == "openvino/model_fp32.xml"
    assert manifest.conversion is not None


def test_missing_calibration_is_refused_before_any_work(pattern_data, trained_tiny, tmp_path):
    with pytest.raises(EdgekitError, match="--calib"):
        build_tiny("cpu", tmp_path / "x", pattern_data, trained_tiny, calib=None)


def _manifest(fp32_ms: float | None, int8_ms: float | None, agreement: float = 1.0) -> tuple:
    """What _recommend decides from: the target runtime's entries, the quantization, the latency check."""
    measured = fp32_ms is not None
    models = [ModelEntry("f.pt", "pytorch", "fp32"), ModelEntry("f.onnx", "onnxruntime", "fp32"),
              ModelEntry("i.onnx", "onnxruntime", "int8")]
    return (tuple(m for m in models if m.runtime == "onnxruntime"),
            QuantizationRecord(int8_vs_fp32=LogitComparison(max_abs_diff=0.1, max_normalised_diff=0.01, mean_abs_diff=0.01,
                                                            top1_agreement=agreement, samples=32)),
            LatencyCheck(measured=measured, p50_ms={"fp32": fp32_ms, "int8": int8_ms},
                         int8_speedup=fp32_ms / int8_ms if measured else None))


def test_slower_or_disagreeing_int8_is_not_recommended():
    model, reason = _recommend(*_manifest(6.0, 8.1))
    assert model == "f.onnx" and "slower" in reason
    model, reason = _recommend(*_manifest(3.5, 2.2, agreement=0.5))
    assert model == "f.onnx" and "50.0%" in reason
    assert _recommend(*_manifest(3.5, 2.2))[0] == "i.onnx"
    assert _recommend(*_manifest(None, None))[0] == "i.onnx"  # e.g. rpi4 built on x86: not timed here


def test_an_int8_that_would_not_load_with_exact_kernels_never_ships(pattern_data, trained_tiny, tmp_path, monkeypatch):
    """The build's load check stands between a quantizer's output and the artifact: where it fails
    (here made to, by the graph check), fp32 ships with the reason and the build still succeeds."""
    monkeypatch.setattr("edgekit.quantize.int8_graph.exact_option_collisions", lambda model: ["w_quantized"])
    out = build_tiny("cpu", tmp_path / "a", pattern_data, trained_tiny, calib_size=16, check_latency=False)
    manifest = read_manifest(out).to_dict()
    assert [m["file"] for m in manifest["models"]] == ["model_fp32.pt", "model_fp32.onnx"]
    assert not (out / "model_int8.onnx").exists()
    reason = manifest["quantization"]["skipped"]
    assert "session.x64quantprecision=1" in reason and "AVX-512 VNNI" in reason and "w_quantized" in reason
    assert manifest["recommended_model"] == "model_fp32.onnx"
    assert "int8: skipped (int8 not shipped" in (out / "REPORT.md").read_text()
