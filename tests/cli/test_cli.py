"""The CLI through click's CliRunner, README.md's one-line errors for bad input, and the installed script."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.cli.commands import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, fragment):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and fragment in lines[0], result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_models_and_targets_list():
    assert "mobilenet_v2_cifar" in run("models").output
    listing = run("targets").output
    assert "rpi4" in listing and "aarch64" in listing and "nncf" in listing


def test_build_then_bench_through_the_cli(pattern_data, trained_tiny, tmp_path):
    out = tmp_path / "art"
    result = run("build", "--model", "tiny_cnn", "--target", "cpu", "--weights", trained_tiny["checkpoint"],
                 "--calib", pattern_data["train"], "--calib-size", 32, "--out", out, "--no-latency-check")
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").is_file()
    result = run("bench", out, "--data", pattern_data["val"], "--runs", 5, "--warmup", 1,
                 "--json", tmp_path / "b.json", "--csv", tmp_path / "b.csv", "--report", tmp_path / "b.md",
                 "--plot", tmp_path / "b.png")
    assert result.exit_code == 0, result.output
    assert "model_int8.onnx" in result.output and (tmp_path / "b.csv").is_file()
    assert "| model_int8.onnx | onnxruntime | int8 |" in (tmp_path / "b.md").read_text()
    assert (tmp_path / "b.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.fixture()
def bad_inputs(tmp_path, pattern_data):
    empty = tmp_path / "empty"
    empty.mkdir()
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "notes.txt").write_text("not an image")
    broken = tmp_path / "broken"
    shutil.copytree(pattern_data["val"] / "blob", broken)
    (broken / "zzz.jpg").write_bytes(b"\xff\xd8 truncated")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage that is not a protobuf model")
    return {"empty": empty, "texts": texts, "broken": broken, "corrupt": corrupt,
            "custom_op": _onnx_with_custom_op(tmp_path / "custom.onnx"), "calib": pattern_data["train"]}


def _onnx_with_custom_op(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("FancyActivation", ["input"], ["logits"], domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
                              ir_version=8)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("case,args,fragment", [
    ("missing calib", ["-m", "tiny_cnn", "-t", "cpu", "--calib", "{tmp}/nope"], "does not exist"),
    ("empty calib", ["-m", "tiny_cnn", "-t", "cpu", "--calib", "{empty}"], "has no images"),
    ("non-image files", ["-m", "tiny_cnn", "-t", "cpu", "--calib", "{texts}"], "1 non-image files ignored"),
    ("undecodable image", ["-m", "tiny_cnn", "-t", "cpu", "--calib", "{broken}"], "zzz.jpg"),
    ("corrupt onnx", ["-m", "{corrupt}", "-t", "cpu", "--calib", "{calib}"], "not a valid ONNX model"),
    ("unsupported op", ["-m", "{custom_op}", "-t", "cpu", "--calib", "{calib}"], "FancyActivation"),
    ("wrong input shape", ["-m", "{custom_op}", "-t", "cpu", "--calib", "{calib}", "--input-size", "32"],
     "wrong input shape"),
    ("model too small input", ["-m", "vgg19_bn_cifar", "-t", "cpu", "--calib", "{calib}", "--input-size", "8",
                               "--calib-size", "2"], "cannot run on input of shape"),
    ("unknown target", ["-m", "tiny_cnn", "-t", "jetson", "--calib", "{calib}"], "known targets: cpu, openvino, rpi4"),
    ("unknown model", ["-m", "resnet9000", "-t", "cpu", "--calib", "{calib}"], "unknown model"),
    ("no calibration", ["-m", "tiny_cnn", "-t", "cpu"], "--calib"),
    ("bad weights", ["-m", "tiny_cnn", "-t", "cpu", "--calib", "{calib}", "--weights", "{corrupt}"],
     "cannot load weights"),
])
def test_bad_input_gets_one_line_error_and_leaves_no_output(bad_inputs, tmp_path, case, args, fragment):
    out = tmp_path / "out"
    values = {**bad_inputs, "tmp": tmp_path}
    result = run("build", *[a.format(**values) for a in args], "--out", out)
    assert_one_line_error(result, fragment)
    assert not out.exists()
    assert not list(tmp_path.glob(".out.*"))


def test_bench_on_a_non_artifact_is_one_line(tmp_path):
    assert_one_line_error(run("bench", tmp_path), "not an edgekit artifact")


def test_installed_console_script_runs():
    script = Path(sys.executable).with_name("edgekit")
    assert script.is_file(), "the package's console script is not installed in this environment"
    done = subprocess.run([str(script), "build", "-m", "tiny_cnn", "-t", "nowhere", "--fp32-only"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: unknown target 'nowhere'")
    listing = subprocess.run([str(script), "models"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and "efficientnet_b0" in listing.stdout
