"""verify's infer driver: one model over an .npy file, with the board runner's sessions, run alone."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgekit.runtimes import board_runner
from edgekit.runtimes.emulation import INFER_DRIVER
from edgekit.runtimes.sessions import ort_logits


@pytest.fixture()
def lone_runner(tmp_path):
    """The driver and the board runner copied outside the package, as they sit in it, run with -I:
    any import of edgekit would fail."""
    (tmp_path / "emulation").mkdir()
    shutil.copy(board_runner.__file__, tmp_path / "board_runner.py")
    return str(shutil.copy(INFER_DRIVER, tmp_path / "emulation" / "infer_driver.py"))


@pytest.fixture()
def infer_driver(monkeypatch):
    """The driver imported here; it puts edgekit/runtimes first on sys.path (for board_runner), undone after."""
    import importlib

    monkeypatch.setattr(sys, "path", list(sys.path))
    return importlib.import_module("edgekit.runtimes.emulation.infer_driver")


def run(runner: str, *args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", runner, *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kwargs)


def test_infer_matches_onnxruntime_here(lone_runner, cpu_artifact, trained_tiny, tmp_path):
    inputs = trained_tiny["x_val"][:12]
    np.save(tmp_path / "in.npy", inputs)
    done = run(lone_runner, cpu_artifact / "model_int8.onnx", tmp_path / "in.npy", tmp_path / "out.npy")
    assert done.returncode == 0, done.stderr
    expected = ort_logits(cpu_artifact / "model_int8.onnx", inputs, batch_size=1)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


def test_infer_runs_an_openvino_ir_as_edgekit_does(lone_runner, openvino_artifact, trained_tiny, tmp_path):
    from edgekit.runtimes.sessions import openvino_logits

    inputs = trained_tiny["x_val"][:6]
    np.save(tmp_path / "in.npy", inputs)
    ir = openvino_artifact / "openvino" / "model_int8.xml"
    done = run(lone_runner, ir, tmp_path / "in.npy", tmp_path / "out.npy", "--runtime", "openvino",
               "--precision", "f32", "--threads", 1)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), openvino_logits(ir, inputs, precision="f32"))


@pytest.mark.parametrize("make_runner, fragment", [
    # What OpenVINO 2026.4.1 does with an int8 IR on an emulated Cortex-A72: no rows, or a compile error.
    (lambda job: (lambda x: np.zeros((0, 10), dtype=np.float32)), "returned output of shape (0, 10) for one input"),
    (lambda job: (_ for _ in ()).throw(RuntimeError("Exception from plugin.cpp:54:\nobject is not initialized\n\n")),
     "onnxruntime cannot load model_int8.onnx here: Exception from plugin.cpp:54: object is not initialized"),
])
def test_a_runtime_that_refuses_or_misruns_a_model_is_one_line(monkeypatch, capsys, infer_driver, cpu_artifact,
                                                               tmp_path, make_runner, fragment):
    np.save(tmp_path / "in.npy", np.zeros((2, 3, 32, 32), dtype=np.float32))
    monkeypatch.setitem(infer_driver.RUNNERS, "onnxruntime", make_runner)
    code = infer_driver.main([str(cpu_artifact / "model_int8.onnx"), str(tmp_path / "in.npy"),
                              str(tmp_path / "out.npy")])
    error = capsys.readouterr().err
    assert code == infer_driver.MODEL_FAILED and error.count("\n") == 1 and fragment in error, error
    assert not (tmp_path / "out.npy").exists()


def test_infer_names_a_missing_file_in_one_line(lone_runner, cpu_artifact, tmp_path):
    np.save(tmp_path / "in.npy", np.zeros((1, 3, 32, 32), dtype=np.float32))
    for args, fragment in [((tmp_path / "none.onnx", tmp_path / "in.npy", tmp_path / "out.npy"), "model"),
                           ((cpu_artifact / "model_int8.onnx", tmp_path / "none.npy", tmp_path / "out.npy"), "inputs"),
                           ((cpu_artifact / "model_int8.onnx", tmp_path / "in.npy", tmp_path / "no" / "o.npy"),
                            "outputs folder")]:
        done = run(lone_runner, *args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith(f"error: infer: {fragment} ") and "does not exist" in done.stderr
    done = run(lone_runner, cpu_artifact / "model_int8.onnx", tmp_path / "in.npy", tmp_path / "o.npy",
               "--threads", -1)
    assert done.returncode == 2 and "--threads must be >= 0, got -1" in done.stderr
