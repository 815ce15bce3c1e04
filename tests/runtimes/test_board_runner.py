"""The board runner is a script copied to boards: it must run alone, with numpy and onnxruntime only
(and openvino for IR files, where installed)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgekit.runtimes import board_runner

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
    assert dynamic == {"numpy", "onnxruntime", "openvino"}


def test_info_describes_the_machine(lone_runner):
    done = run(lone_runner, "info")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["arch"] and info["onnxruntime"] and info["numpy"] and "processor" in info["cpuinfo"]


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


# ---- the interpreter its workers start with ------------------------------------------------------

@pytest.fixture()
def recording_python(tmp_path):
    """An interpreter command that notes each worker it starts, then runs the real python."""
    log = tmp_path / "workers.log"
    wrapper = tmp_path / "recording-python"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{sys.executable}" -I "$@"\n')
    wrapper.chmod(0o755)
    return {"argv": json.dumps([str(wrapper)]), "log": log}


def with_env(**variables) -> dict:
    return {"env": {**os.environ, **variables}}


def workers_started(recording) -> list[str]:
    return recording["log"].read_text().splitlines() if recording["log"].exists() else []


def test_bench_starts_its_workers_with_the_interpreter_override(lone_runner, cpu_artifact, recording_python):
    # Under emulation this is what starts each worker through qemu, with or without binfmt_misc.
    done = run(lone_runner, "bench", cpu_artifact, "--runs", 2, "--warmup", 0,
               **with_env(EDGEKIT_RUNNER_PYTHON=recording_python["argv"]))
    assert done.returncode == 0, done.stderr
    assert workers_started(recording_python) == [f"{lone_runner} measure"] * 2
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert [row["ok"] for row in report["results"]] == [True, True]


@pytest.mark.parametrize("value", ["python3", '"python3"', "[]", '["python3", ""]', "[1]", '{"argv": []}'])
def test_an_invalid_interpreter_override_is_one_line(lone_runner, cpu_artifact, value):
    done = run(lone_runner, "bench", cpu_artifact, "--runs", 1, **with_env(EDGEKIT_RUNNER_PYTHON=value))
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr.startswith("error: EDGEKIT_RUNNER_PYTHON must be a JSON list") and done.stderr.count("\n") == 1


def test_a_worker_that_cannot_start_is_an_error_row(lone_runner, cpu_artifact, tmp_path):
    done = run(lone_runner, "bench", cpu_artifact, "--runs", 1,
               **with_env(EDGEKIT_RUNNER_PYTHON=json.dumps([str(tmp_path / "no-such-python")])))
    assert done.returncode == 1, done.stderr
    rows = json.loads(done.stdout.strip().splitlines()[-1])["results"]
    assert all(not row["ok"] and "cannot start the worker" in row["error"] for row in rows)


# ---- what bench refuses to run -------------------------------------------------------------------

def _edit_manifest(change):
    def tamper(folder, outside):
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest = change(manifest, outside)
        (folder / "manifest.json").write_text(json.dumps(manifest))
    return tamper


def _set(*keys_and_value):
    """A manifest edit: the value at manifest[k1][k2]... replaced, or deleted if the value is None."""
    *parents, last, value = keys_and_value

    def change(manifest, outside):
        node = manifest
        for key in parents:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
        return manifest
    return _edit_manifest(change)


def _flip_last_byte(folder, outside):
    model = folder / "model_int8.onnx"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF  # same size: only the sha256 tells
    model.write_bytes(bytes(data))


def _listed_escape(name_of):
    """A model entry naming a file outside the folder, even listed in files with its true hash."""
    def change(manifest, outside):
        name = name_of(outside)
        manifest["models"][1]["file"] = name
        manifest["files"][name] = manifest["files"]["model_fp32.onnx"]
        return manifest
    return _edit_manifest(change)


def _symlink_model_outside(folder, outside):
    shutil.copy(folder / "model_int8.onnx", outside / "model_int8.onnx")  # the listed bytes, elsewhere
    (folder / "model_int8.onnx").unlink()
    (folder / "model_int8.onnx").symlink_to(outside / "model_int8.onnx")


def _symlink_manifest(folder, outside):
    shutil.move(folder / "manifest.json", outside / "manifest.json")
    (folder / "manifest.json").symlink_to(outside / "manifest.json")


def _huge_manifest(folder, outside):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["padding"] = "x" * (16 * 1024 * 1024)
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("tamper, fragment", [
    (_flip_last_byte, "artifact file model_int8.onnx does not match its size and sha256"),
    (_set("files", "model_int8.onnx", None), "'model_int8.onnx', which is not listed in its files"),
    (_set("models", 2, "companions", ["model_int8.onnx.data"]), "'model_int8.onnx.data', which is not listed"),
    (_listed_escape(lambda outside: "../x.onnx"), "'../x.onnx', a path outside the artifact"),
    (_listed_escape(lambda outside: str(outside / "x.onnx")), "x.onnx', a path outside the artifact"),
    (_symlink_model_outside, "artifact file model_int8.onnx is a symlink"),
    (_edit_manifest(lambda manifest, outside: manifest["models"]), "the top level must be a JSON object"),
    (_set("files", None), '"files" must be an object'),
    (_set("files", "model_fp32.onnx", "sha256", "00" * 31), "files['model_fp32.onnx'] must be"),
    (_set("models", None), '"models" must be a list'),
    (_set("models", 1, "precision", None), "models[1] must be an object"),
    (_set("input", "shape", [1, 3, 0, 32]), "input.shape must be a list of positive integers"),
    (_set("target", "threads", 0), "target.threads must be a positive integer"),
    (_symlink_manifest, "manifest.json is a symlink"),
    (_huge_manifest, "manifest.json is larger than 16 MB"),
])
def test_bench_refuses_a_tampered_artifact_before_running_anything(lone_runner, cpu_artifact, recording_python,
                                                                   tmp_path, tamper, fragment):
    folder, outside = tmp_path / "artifact", tmp_path / "outside"
    shutil.copytree(cpu_artifact, folder)
    outside.mkdir()
    shutil.copy(cpu_artifact / "model_fp32.onnx", outside / "x.onnx")
    tamper(folder, outside)
    done = run(lone_runner, "bench", folder, "--runs", 1, **with_env(EDGEKIT_RUNNER_PYTHON=recording_python["argv"]))
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1 and fragment in done.stderr, done.stderr
    assert workers_started(recording_python) == [] and "measuring" not in done.stderr


@pytest.mark.parametrize("args, fragment", [
    (["--runs", 0], "--runs must be >= 1, got 0"),
    (["--warmup", -1], "--warmup must be >= 0, got -1"),
    (["--threads", 0], "--threads must be >= 1, got 0"),
    (["--threads", -2], "--threads must be >= 1, got -2"),
    (["--data", "missing.npy"], "missing.npy is not a readable .npy file"),
    (["--data", "text.npy"], "text.npy is not a readable .npy file"),
    (["--data", "float64.npy"], "holds float64 4 x 3 x 32 x 32, expected float32 N x 3 x 32 x 32"),
    (["--data", "small.npy"], "holds float32 4 x 3 x 16 x 16, expected float32 N x 3 x 32 x 32"),
    (["--data", "empty.npy"], "holds float32 0 x 3 x 32 x 32, expected float32 N x 3 x 32 x 32 with N >= 1"),
])
def test_bench_options_are_checked_before_running_anything(lone_runner, cpu_artifact, recording_python, tmp_path,
                                                           args, fragment):
    (tmp_path / "text.npy").write_text("not an array")
    np.save(tmp_path / "float64.npy", np.zeros((4, 3, 32, 32)))
    np.save(tmp_path / "small.npy", np.zeros((4, 3, 16, 16), dtype=np.float32))
    np.save(tmp_path / "empty.npy", np.zeros((0, 3, 32, 32), dtype=np.float32))
    done = run(lone_runner, "bench", cpu_artifact, *args, cwd=tmp_path,
               **with_env(EDGEKIT_RUNNER_PYTHON=recording_python["argv"]))
    assert done.returncode == 2 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert fragment in done.stderr and workers_started(recording_python) == []


# The runner reads manifest.json with literal keys (it cannot import edgekit): each must be the
# name of a field of the record that edgekit.artifact.manifest writes under that key.
RUNNER_KEYS = {"files": "ArtifactManifest", "models": "ArtifactManifest", "input": "ArtifactManifest",
               "target": "ArtifactManifest", "model": "ArtifactManifest", "sha256": "FileRecord",
               "bytes": "FileRecord", "file": "ModelEntry", "runtime": "ModelEntry", "precision": "ModelEntry",
               "companions": "ModelEntry", "x86_int8_kernels": "ModelEntry", "shape": "InputSpec",
               "threads": "TargetRecord", "name": "ModelInfo"}


def _manifest_keys_read_by_the_runner() -> set[str]:
    """String keys the runner's manifest readers subscript, .get() or loop over."""
    tree = ast.parse(open(RUNNER).read())
    readers = [node for node in ast.walk(tree)
               if isinstance(node, ast.FunctionDef) and node.name in ("_check_manifest", "_verified", "bench")]
    keys = set()
    for function in readers:
        for node in ast.walk(function):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                keys.add(node.slice.value)
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                keys.add(node.args[0].value)
            elif isinstance(node, ast.comprehension | ast.For) and isinstance(node.iter, ast.Tuple):
                keys |= {item.value for item in node.iter.elts if isinstance(item, ast.Constant)}
    return {key for key in keys if isinstance(key, str)}


def test_the_runners_manifest_keys_are_the_records_field_names():
    import dataclasses

    from edgekit.artifact import manifest

    assert _manifest_keys_read_by_the_runner() == set(RUNNER_KEYS)
    for key, record in RUNNER_KEYS.items():
        assert key in {f.name for f in dataclasses.fields(getattr(manifest, record))}, (key, record)
    assert "name" in {f.name for f in dataclasses.fields(manifest.TargetRecord)}  # target.name too


def _config_entry(options, key: str) -> str | None:
    try:
        return options.get_session_config_entry(key)
    except RuntimeError:  # ORT raises for a key that was never set
        return None


def test_exact_int8_kernels_are_asked_for_exactly_where_this_cpu_lacks_vnni(lone_runner):
    import platform

    import onnxruntime as ort

    flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "").split()
    lacks_vnni = platform.machine() == "x86_64" and "avx512_vnni" not in flags
    options = board_runner.ort_session_options(ort, 1)
    assert _config_entry(options, "session.x64quantprecision") == ("1" if lacks_vnni else None)
    info = json.loads(run(lone_runner, "info").stdout)
    assert info["ort_session_config"] == (board_runner.EXACT_INT8_OPTIONS if lacks_vnni else {})


def test_every_copy_of_the_runner_is_taken_from_its_one_file():
    """bench over SSH and the emulated board copy the runner by path: both paths are this module's file."""
    from pathlib import Path

    from edgekit.runtimes.remote.runner import RUNNER as OVER_SSH
    from edgekit.runtimes.emulation.arm64 import BOARD_RUNNER as EMULATED

    assert OVER_SSH == EMULATED == Path(board_runner.__file__).resolve()
