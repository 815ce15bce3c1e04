import json

import pytest

from edgekit.benchmark.run import bench_artifact
from edgekit.core.errors import EdgekitError


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


def _copy_tree(source, destination):
    import shutil

    shutil.copytree(source, destination)
    return destination


def test_folders_are_mapped_to_outputs_by_class_name_not_by_order(cpu_artifact, pattern_data, tmp_path):
    """Folders renamed so their sorted order differs from the model's: same images, same top-1."""
    reference = bench_artifact(cpu_artifact, data=pattern_data["val"], runs=2, warmup=0)
    prefixed = _copy_tree(pattern_data["val"], tmp_path / "prefixed")
    # "vertical" -> "0_vertical" would sort first; by name, it must still be scored as output 3.
    for name in ("blob", "checker", "horizontal", "vertical"):
        (prefixed / name).rename(prefixed / f"{'0_' if name == 'vertical' else ''}{name}")
    with pytest.raises(EdgekitError, match="'0_vertical' are not classes of this model"):
        bench_artifact(cpu_artifact, data=prefixed, runs=2, warmup=0)
    subset = _copy_tree(pattern_data["val"], tmp_path / "subset")
    import shutil

    shutil.rmtree(subset / "blob")  # three of four classes: labels must not shift down by one
    partial = bench_artifact(cpu_artifact, data=subset, runs=2, warmup=0)
    top1 = {row["file"]: row["top1"] for row in partial["results"]}
    full = {row["file"]: row["top1"] for row in reference["results"]}
    assert top1["model_fp32.pt"] >= 0.5 and abs(top1["model_fp32.pt"] - full["model_fp32.pt"]) < 0.2


def test_the_manifest_carries_the_checkpoint_class_names(cpu_artifact):
    from edgekit.artifact.folder import read_manifest

    assert read_manifest(cpu_artifact).to_dict()["classes"] == ["blob", "checker", "horizontal", "vertical"]


def test_without_class_names_bench_asks_for_them_and_build_classes_records_them(pattern_data, trained_tiny, tmp_path):
    """No guess from folder order: a bare state_dict's outputs are matched to folders only once
    ``build --classes`` has named them (a list, or the training ImageFolder's sorted class folders)."""
    import torch

    from edgekit.artifact.folder import read_manifest
    from edgekit.builder.pipeline import BuildOptions, build_artifact

    state = torch.load(trained_tiny["checkpoint"], weights_only=True)
    bare = tmp_path / "bare.pt"
    torch.save(state["state_dict"], bare)  # a bare state_dict knows no class names
    options = BuildOptions(calib=pattern_data["train"], calib_size=16, check_latency=False)
    unnamed = build_artifact("tiny_cnn", "cpu", tmp_path / "unnamed", weights=bare, num_classes=4, options=options)
    with pytest.raises(EdgekitError, match="records no class names.*build --classes"):
        bench_artifact(unnamed, data=pattern_data["val"], runs=2, warmup=0)

    named = build_artifact("tiny_cnn", "cpu", tmp_path / "named", weights=bare, num_classes=4,
                           classes=str(pattern_data["train"]), options=options)
    assert read_manifest(named).classes == ("blob", "checker", "horizontal", "vertical")
    report = bench_artifact(named, data=pattern_data["val"], runs=2, warmup=0)
    assert all(row["ok"] for row in report["results"])
    trained = [r["top1"] for r in report["results"] if r.get("top1") is not None]
    assert trained and min(trained) > 0.5  # the trained net (4 classes), scored against the right outputs


@pytest.mark.parametrize("classes,fragment", [
    ("a,b,c", "--classes names 3 classes, the model has 4 outputs"),
    ("a,b,,d", "--classes: class names must be a list of distinct"),
    ("a,b,a,d", "--classes: class names must be a list of distinct"),
    ("vertical,horizontal,checker,blob", "--classes disagrees with the class names"),
])
def test_bad_class_names_are_refused_before_any_work(pattern_data, trained_tiny, tmp_path, classes, fragment):
    from edgekit.builder.pipeline import BuildOptions, build_artifact

    with pytest.raises(EdgekitError, match=fragment):
        build_artifact("tiny_cnn", "cpu", tmp_path / "art", weights=trained_tiny["checkpoint"], classes=classes,
                       options=BuildOptions(fp32_only=True, check_latency=False))
    assert not (tmp_path / "art").exists()


def test_report_and_plot_are_written_and_replaced_only_when_edgekit_wrote_them(cpu_artifact, pattern_data, tmp_path):
    from PIL import Image

    from edgekit.artifact.folder import read_manifest
    from tests.benchmark.test_bench_report import _section, _tables

    markdown_path, plot_path = tmp_path / "bench.md", tmp_path / "bench.png"
    report = bench_artifact(cpu_artifact, data=pattern_data["val"], runs=5, warmup=1, report_path=markdown_path,
                            plot_path=plot_path)
    markdown = markdown_path.read_text()
    header, *rows = _tables(markdown)["Results"]
    assert sorted(row[0] for row in rows) == sorted(row["file"] for row in report["results"])
    manifest = read_manifest(cpu_artifact)
    recommendation = _section(markdown, "Recommendation")
    assert f"**`{manifest.recommended_model}`**" in recommendation and "fixed recipe" in recommendation
    versions = dict(_tables(markdown)["Versions"][1:])
    assert versions["edgekit"] == "0.1.0" and versions["onnxruntime"] == report["host"]["onnxruntime"]
    assert f"{report['host']['logical_cores']} logical cores" in _section(markdown, "Host")
    with Image.open(plot_path) as image:
        assert image.format == "PNG" and image.width >= 1200 and image.height >= 500
    # A rerun replaces edgekit's own files; a user's file of the same name is never touched.
    bench_artifact(cpu_artifact, runs=2, warmup=0, report_path=markdown_path, plot_path=plot_path)
    assert "No evaluation data" in markdown_path.read_text()
    users = tmp_path / "notes.md"
    users.write_text("# my notes\n")
    with pytest.raises(EdgekitError, match="--report .* edgekit did not write it"):
        bench_artifact(cpu_artifact, runs=2, warmup=0, report_path=users)
    assert users.read_text() == "# my notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.md", "bench.png", "notes.md"]  # no temp files


def test_workers_start_through_the_given_prefix_and_a_bad_one_is_one_line(cpu_artifact, tmp_path, monkeypatch):
    """EDGEKIT_WORKER_PREFIX (an emulator, for a bench run under qemu) goes before every local worker."""
    log = tmp_path / "started"
    wrapper = tmp_path / "wrapper.sh"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("EDGEKIT_WORKER_PREFIX", json.dumps([str(wrapper)]))
    report = bench_artifact(cpu_artifact, runs=2, warmup=0)
    assert all(row["ok"] for row in report["results"])
    assert log.read_text().count("edgekit.benchmark.worker") == len(report["results"])
    # The int8 row says which arithmetic it measured (this CPU's; tests/quantize/test_x86_int8_paths.py pretends others).
    assert next(r for r in report["results"] if r["precision"] == "int8")["int8_kernels"].startswith("exact")
    monkeypatch.setenv("EDGEKIT_WORKER_PREFIX", "qemu-x86_64-static -cpu Haswell")
    with pytest.raises(EdgekitError, match=r"EDGEKIT_WORKER_PREFIX must be a JSON list of non-empty strings"):
        bench_artifact(cpu_artifact, runs=2, warmup=0)
