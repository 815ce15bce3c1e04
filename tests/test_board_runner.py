"""The board runner is a script copied to boards: it must run alone, with numpy and onnxruntime only."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgekit import board_runner
from edgekit.runtimes import ort_logits

RUNNER = board_runner.__file__


@pytest.fixture()
def lone_runner(tmp_path):
    """A copy outside the package, run with -I: any import of edgekit would fail."""
    return str(shutil.copy(RUNNER, tmp_path / "board_runner.py"))


def run(runner: str, *args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", runner, *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kwargs)


def test_imports_only_the_standard_library_numpy_and_onnxruntime():
    tree = ast.parse(open(RUNNER).read())
    names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    names |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    dynamic = {node.args[0].value for node in ast.walk(tree) if isinstance(node, ast.Call)
               and getattr(node.func, "id", None) == "_require"}
    assert names - set(sys.stdlib_module_names) == set()
    assert dynamic == {"numpy", "onnxruntime"}


def test_info_describes_the_machine(lone_runner):
    done = run(lone_runner, "info")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["arch"] and info["onnxruntime"] and info["numpy"] and "processor" in info["cpuinfo"]


def test_infer_matches_onnxruntime_here(lone_runner, cpu_artifact, trained_tiny, tmp_path):
    inputs = trained_tiny["x_val"][:12]
    np.save(tmp_path / "in.npy", inputs)
    done = run(lone_runner, "infer", cpu_artifact / "model_int8.onnx", tmp_path / "in.npy", tmp_path / "out.npy")
    assert done.returncode == 0, done.stderr
    expected = ort_logits(cpu_artifact / "model_int8.onnx", inputs, batch_size=1)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


def test_bench_measures_the_onnxruntime_models(lone_runner, cpu_artifact, trained_tiny, tmp_path):
    np.save(tmp_path / "eval.npy", trained_tiny["x_val"])
    done = run(lone_runner, "bench", cpu_artifact, "--runs", 5, "--warmup", 1, "--data", tmp_path / "eval.npy")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert [row["file"] for row in report["results"]] == ["model_fp32.onnx", "model_int8.onnx"]
    assert report["skipped"] == ["model_fp32.pt"]
    fp32 = report["results"][0]
    assert fp32["ok"] and fp32["runs"] == 5 and len(fp32["predictions"]) == len(trained_tiny["x_val"])
    accuracy = np.mean(np.asarray(fp32["predictions"]) == trained_tiny["y_val"])
    assert accuracy == pytest.approx(trained_tiny["val_accuracy"])
    assert "p50 ms" in done.stderr  # the plain table a person on the board reads


def test_bench_errors_are_one_line_with_distinct_exit_codes(lone_runner, cpu_artifact, tmp_path):
    done = run(lone_runner, "bench", tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error:") and "not an edgekit artifact" in done.stderr
    escaping = tmp_path / "escaping"
    shutil.copytree(cpu_artifact, escaping)
    manifest = json.loads((escaping / "manifest.json").read_text())
    manifest["models"][1]["file"] = "../../etc/passwd"
    (escaping / "manifest.json").write_text(json.dumps(manifest))
    done = run(lone_runner, "bench", escaping, "--runs", 1)
    assert done.returncode == 2 and "outside the artifact" in done.stderr
    hide_ort = "import runpy, sys; sys.modules['onnxruntime'] = None; sys.argv = sys.argv[1:]; " \
               "runpy.run_path(sys.argv[0], run_name='__main__')"
    done = subprocess.run([sys.executable, "-I", "-c", hide_ort, lone_runner, "bench", cpu_artifact],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and "onnxruntime is not installed" in done.stderr
