"""A new runtime is one module in edgekit/backends/ plus a target profile that names it: nothing else
in edgekit changes. Proved on a copy of the package with one module added (a stand-in runtime: ONNX
Runtime with basic graph optimizations only), built and benchmarked through the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import edgekit

PLUGIN = '''
"""ONNX Runtime with basic graph optimizations only: a stand-in for a third runtime."""

from edgekit.backends.base import FP32_ONNX, with_entries
from edgekit.backends.onnxruntime import OnnxRuntimeBackend
from edgekit.runtimes.sessions import ort_logits, ort_session


class BasicOrtBackend(OnnxRuntimeBackend):
    runtime = "ortbasic"

    def prepare(self, folder, manifest):
        return with_entries(manifest, self.entry(FP32_ONNX, "fp32"))

    def logits(self, path, images, kernels=None):
        return ort_logits(path, images, basic_optimizations_only=True, kernels=kernels or "exact")

    @classmethod
    def runner(cls, path, threads, job):
        session = ort_session(path, threads=threads, basic_optimizations_only=True)
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]


BACKEND = BasicOrtBackend
'''

PROFILE = '''name = "basic"
arch = "x86_64"
runtime = "ortbasic"
threads = 1

[quantization]
backend = "onnxruntime"
format = "qdq"
reduce_range = true
'''


def test_a_backend_module_and_a_profile_add_a_runtime(tmp_path, pattern_data, trained_tiny):
    package = tmp_path / "copy" / "edgekit"
    shutil.copytree(Path(edgekit.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "backends" / "ortbasic.py").write_text(PLUGIN)
    profile = tmp_path / "basic.toml"
    profile.write_text(PROFILE)
    env = {**os.environ, "PYTHONPATH": str(package.parent), "EDGEKIT_NO_PROGRESS": "1"}

    def edgekit_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edgekit", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)

    out = tmp_path / "artifact"
    built = edgekit_cli("build", "-m", "tiny_cnn", "--weights", str(trained_tiny["checkpoint"]), "-t", str(profile),
                        "--calib", str(pattern_data["train"]), "--calib-size", "32", "-o", str(out))
    assert built.returncode == 0, built.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    ours = [m for m in manifest["models"] if m["runtime"] == "ortbasic"]
    assert sorted(m["precision"] for m in ours) == ["fp32", "int8"]
    assert manifest["recommended_model"] in {m["file"] for m in ours}
    assert manifest["latency_check"]["runtime"] == "ortbasic"  # timed by the new backend's runner

    report = tmp_path / "bench.json"
    benched = edgekit_cli("bench", str(out), "--runs", "5", "--warmup", "1", "--json", str(report))
    assert benched.returncode == 0, benched.stderr
    rows = [r for r in json.loads(report.read_text())["results"] if r["runtime"] == "ortbasic"]
    assert len(rows) == 2 and all(r["ok"] for r in rows), rows

    fp32_only = edgekit_cli("build", "-m", "tiny_cnn", "--weights", str(trained_tiny["checkpoint"]), "-t",
                            str(profile), "--fp32-only", "-o", str(tmp_path / "fp32"))
    assert fp32_only.returncode == 0, fp32_only.stderr
