import json

import pytest

from edgekit.errors import EdgekitError
from edgekit.stages.bench import bench_artifact


def test_bench_measures_every_runtime_with_accuracy(cpu_artifact, pattern_data, trained_tiny, tmp_path):
    report = bench_artifact(cpu_artifact, data=pattern_data["val"], runs=20, warmup=2,
                            json_path=tmp_path / "r.json", csv_path=tmp_path / "r.csv")
    rows = {row["file"]: row for row in report["results"]}
    assert set(rows) == {"model_fp32.pt", "model_fp32.onnx", "model_int8.onnx"}
    for row in rows.values():
        assert row["ok"], row.get("error")
        latency = row["latency_ms"]
        assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"]
        assert row["peak_rss_mb"] > 20 and row["size_mb"] > 0
    # The PyTorch reference sees the same images as the training-time check.
    assert rows["model_fp32.pt"]["top1"] == pytest.approx(trained_tiny["val_accuracy"])
    assert rows["model_fp32.onnx"]["agreement_with_fp32"] == 1.0
    assert rows["model_int8.onnx"]["agreement_with_fp32"] >= 0.9
    assert "speedup_vs_fp32" in rows["model_int8.onnx"]
    assert json.loads((tmp_path / "r.json").read_text())["settings"]["eval_images"] == 100
    # Described the way a board is (the runner's `info`), with this CPU's int8 verdict.
    host = report["host"]
    assert host["board"] is None and host["cpu"] != "unknown" and host["onnxruntime"] and host["int8_verdict"]
    assert (tmp_path / "r.csv").read_text().count("\n") == 4


def test_openvino_artifact_benches_in_openvino(openvino_artifact):
    report = bench_artifact(openvino_artifact, runs=10, warmup=2)
    runtimes = {(row["runtime"], row["precision"]) for row in report["results"] if row["ok"]}
    assert {("openvino", "fp32"), ("openvino", "int8"), ("onnxruntime", "fp32")} <= runtimes


def test_bench_refuses_a_folder_that_is_not_an_artifact(tmp_path):
    with pytest.raises(EdgekitError, match="not an edgekit artifact"):
        bench_artifact(tmp_path)
