"""Every command, a table of bad options and files: one `error:` line naming the option or file, a
non-zero exit, no traceback, and nothing written. (tests/cli/test_cli.py has the first build cases.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgekit.cli.commands import cli
from edgekit.models.weights import CHECKPOINT_FORMAT


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_error_line(result, fragment: str) -> str:
    lines = [line for line in result.output.strip().splitlines() if line.startswith("error:")]
    assert result.exit_code != 0, result.output
    assert len(lines) == 1 and fragment in lines[0], result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory, pattern_data, trained_tiny):
    root = tmp_path_factory.mktemp("bad")
    state = torch.load(trained_tiny["checkpoint"], weights_only=True)
    broken = {k: v.clone() for k, v in state["state_dict"].items()}
    next(t for k, t in broken.items() if k.endswith("weight"))[0] = float("nan")
    torch.save({**state, "state_dict": broken}, root / "nan.pt")
    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": state["state_dict"]}, root / "no-model.pt")
    torch.save({**state, "model": {**state["model"], "num_classes": "4"}}, root / "string-classes.pt")
    torch.save([1, 2, 3], root / "list.pt")
    torch.save({**state, "classes": ["a", "b"]}, root / "wrong-classes.pt")
    (root / "afile").write_text("a file, not a folder")
    (root / "folder.onnx").mkdir()
    _int64_onnx(root / "int64.onnx")
    text = (Path(__file__).resolve().parents[2] / "targets" / "cpu.toml").read_text()
    (root / "latin1.toml").write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    (root / "threads.toml").write_text(text.replace("threads = 2", "threads = -1"))
    (root / "per_channel.toml").write_text(text.replace("per_channel = true", 'per_channel = "yes"'))
    bomb = root / "bomb" / "x"
    bomb.mkdir(parents=True)
    _png_header(bomb / "huge.png", 40000, 40000)
    return {"root": root, "calib": pattern_data["train"], "val": pattern_data["val"], "ckpt": trained_tiny["checkpoint"],
            "ckpt_dir": trained_tiny["checkpoint"].parent,
            **{p.stem.replace("-", "_"): p for p in root.iterdir() if p.is_file()}, "bomb": root / "bomb"}


def _int64_onnx(path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Cast", ["input"], ["logits"], to=TensorProto.FLOAT)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.INT64, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


def _png_header(path, width, height):
    """A tiny file whose header claims a giant image: Pillow's decompression-bomb guard must name it."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))


BUILD = ["build", "-m", "tiny_cnn", "-t", "cpu", "--weights", "{ckpt}", "--calib", "{calib}", "--calib-size", "16",
         "--no-latency-check"]
TRAIN = ["train", "-m", "tiny_cnn", "--data", "{calib}", "--epochs", "1"]
PRUNE = ["prune", "--weights", "{ckpt}", "--data", "{calib}", "--sparsity", "0.5"]
SEARCH = ["search", "--data", "{calib}", "--root-epochs", "0", "--epochs", "1"]

CASES = [
    # build: numbers that used to become defaults or tracebacks
    (BUILD + ["--input-size", "0"], "--input-size"),
    (BUILD + ["--num-classes", "0"], "--num-classes"),
    (BUILD + ["--num-classes", "-1"], "--num-classes"),
    (BUILD + ["--in-channels", "0"], "--in-channels"),
    (BUILD + ["--in-channels", "4"], "--in-channels"),
    (BUILD + ["--calib-size", "0"], "--calib-size"),
    (BUILD + ["--opset", "5"], "--opset"),
    (BUILD + ["--parity-tol", "nan"], "--parity-tol"),
    (BUILD + ["--std", "inf"], "--std"),
    (BUILD + ["--std", "0"], "--std"),
    (BUILD + ["--std", "1,1"], "--mean/--std"),
    (BUILD + ["--mean", "nan"], "--mean"),
    (BUILD + ["--num-classes", "7"], "does not fit checkpoint"),
    (BUILD + ["--input-size", "4096", "--calib-size", "300"], "GiB decoded"),
    (["build", "-m", "{root}/folder.onnx", "-t", "cpu", "--calib", "{calib}"], "is not a file"),
    # build: outputs that would destroy or pollute an input
    (BUILD + ["--out", ".", "--force"], "current folder"),
    (BUILD + ["--out", "..", "--force"], "above the current folder"),
    (BUILD + ["--out", "{calib}", "--force"], "is the calibration folder"),
    (BUILD + ["--out", "{calib}/blob/art"], "inside the calibration folder"),
    (BUILD + ["--out", "{ckpt}", "--force"], "is the weights file"),
    (BUILD + ["--out", "{afile}", "--force"], "is a file, not a folder"),
    (BUILD + ["--out", "{afile}/art"], "is a file, not a folder"),
    # build: bad files
    (["build", "-m", "tiny_cnn", "-t", "cpu", "--calib", "{calib}", "--weights", "{nan}"], "NaN"),
    (["build", "-m", "tiny_cnn", "-t", "cpu", "--calib", "{calib}", "--weights", "{no_model}"], "no 'model' entry"),
    (["build", "-m", "tiny_cnn", "-t", "cpu", "--calib", "{calib}", "--weights", "{string_classes}"], "num_classes"),
    (["build", "-m", "tiny_cnn", "-t", "cpu", "--calib", "{calib}", "--weights", "{list}"], "holds a list"),
    (["build", "-m", "tiny_cnn", "-t", "cpu", "--calib", "{calib}", "--weights", "{wrong_classes}"], "classes"),
    (["build", "-m", "tiny_cnn", "-t", "cpu", "--calib", "{calib}", "--weights", "{root}"], "--weights"),
    (["build", "-m", "{int64}", "-t", "cpu", "--calib", "{calib}"], "int64"),
    (["build", "-m", "tiny_cnn", "-t", "{latin1}", "--fp32-only"], "not UTF-8"),
    (["build", "-m", "tiny_cnn", "-t", "{threads}", "--fp32-only"], "threads"),
    (["build", "-m", "tiny_cnn", "-t", "{per_channel}", "--fp32-only"], "per_channel"),
    (["build", "-m", "tiny_cnn", "-t", "cpu", "--calib", "{bomb}"], "huge.png"),
    # train
    (TRAIN + ["--batch-size", "0"], "--batch-size"),
    (TRAIN + ["--lr", "-1"], "--lr"),
    (TRAIN + ["--lr", "nan"], "--lr"),
    (TRAIN + ["--epochs", "0"], "--epochs"),
    (TRAIN + ["--weight-decay", "inf"], "--weight-decay"),
    (TRAIN + ["--val-fraction", "1"], "--val-fraction"),
    (TRAIN + ["--seed", "-1"], "--seed"),
    (TRAIN + ["--in-channels", "4"], "--in-channels"),
    (TRAIN + ["--batch-size", "1"], "BatchNorm"),
    (TRAIN + ["--val-data", "{calib}"], "overlaps --data"),
    (TRAIN + ["--out", "{calib}"], "is the training data"),
    (TRAIN + ["--out", "{calib}/blob"], "inside the training data"),
    (TRAIN + ["--out", "."], "current folder"),
    (TRAIN + ["--out", "{root}"], "edgekit did not write"),
    (TRAIN + ["--out", "{afile}"], "not a folder"),
    # prune
    (PRUNE + ["--out", "p", "--batch-size", "0"], "--batch-size"),
    (PRUNE + ["--out", "p", "--sparsity", "1"], "--sparsity"),
    (PRUNE + ["--out", "p", "--sparsity", "nan"], "--sparsity"),
    (PRUNE + ["--out", "p", "--amount", "0"], "--amount"),
    (PRUNE + ["--out", "p", "--finetune-epochs", "0"], "--finetune-epochs"),
    (PRUNE + ["--out", "{ckpt_dir}", "--force"], "contains the weights file"),
    (PRUNE + ["--out", "p"], "needs a checkpoint from edgekit train"),
    # search
    (SEARCH + ["--out", "s", "--val-fraction", "0"], "--val-fraction"),
    (SEARCH + ["--out", "s", "--workers", "0"], "--workers"),
    (SEARCH + ["--out", "s", "--lr", "nan"], "--lr"),
    (SEARCH + ["--out", "s", "--epochs", "0"], "--epochs"),
    (SEARCH + ["--out", "."], "current folder"),
    (SEARCH + ["--out", "{calib}/x"], "inside the data folder"),
]


@pytest.mark.parametrize("args,fragment", CASES, ids=[" ".join(a[-2:]) + f" [{i}]" for i, (a, _) in enumerate(CASES)])
def test_bad_input_is_one_line_and_writes_nothing(files, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    before = {p.name for p in files["root"].iterdir()}
    calib_before = sorted(p.relative_to(files["calib"]) for p in files["calib"].rglob("*"))
    arguments = [a.format(**files) for a in args]
    if "--out" not in arguments and args[0] != "train":
        arguments += ["--out", str(tmp_path / "out")]
    elif "--out" not in arguments:
        arguments += ["--out", str(tmp_path / "run")]
    assert_error_line(run(*arguments), fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output, no staging folder
    assert {p.name for p in files["root"].iterdir()} == before
    assert sorted(p.relative_to(files["calib"]) for p in files["calib"].rglob("*")) == calib_before


@pytest.fixture()
def artifact_copy(cpu_artifact, tmp_path):
    folder = tmp_path / "art"
    shutil.copytree(cpu_artifact, folder)
    return folder


@pytest.mark.parametrize("options,fragment", [
    (["--runs", "0"], "--runs"),
    (["--warmup", "-1"], "--warmup"),
    (["--threads", "0"], "--threads"),
    (["--limit", "0"], "--limit"),
    (["--json", "{art}/manifest.json"], "inside the artifact"),
    (["--csv", "{art}/REPORT.md"], "inside the artifact"),
    (["--json", "{tmp}/missing/r.json"], "does not exist"),
    (["--json", "{tmp}/notes.txt"], "edgekit did not write it"),
    (["--csv", "{tmp}"], "--csv"),
    (["--report", "{art}/REPORT.md"], "inside the artifact"),
    (["--report", "{tmp}/notes.txt"], "edgekit did not write it"),
    (["--plot", "{tmp}/notes.txt"], "--plot"),
    (["--plot", "{tmp}/missing/p.png"], "does not exist"),
    (["--report", "{tmp}/r.md", "--plot", "{tmp}/r.md"], "--report and --plot name the same file"),
    (["--plot", "{tmp}/renamed/p.png", "--data", "{tmp}/renamed"], "inside the evaluation data"),
    (["--data", "{tmp}/renamed"], "not classes of this model"),
])
def test_bench_bad_options_are_refused_before_measuring(artifact_copy, tmp_path, pattern_data, options, fragment):
    (tmp_path / "notes.txt").write_text("mine")
    renamed = tmp_path / "renamed"
    shutil.copytree(pattern_data["val"], renamed)
    (renamed / "blob").rename(renamed / "blobs")
    manifest = (artifact_copy / "manifest.json").read_bytes()
    values = {"art": artifact_copy, "tmp": tmp_path}
    result = run("bench", artifact_copy, *[o.format(**values) for o in options])
    assert_error_line(result, fragment)
    assert "measuring" not in result.output and "model_int8.onnx" not in result.output
    assert (artifact_copy / "manifest.json").read_bytes() == manifest
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("options,fragment", [
    (["--tol", "0"], "--tol"),
    (["--threads", "-1"], "--threads"),
    (["--limit", "0"], "--limit"),
    (["--json", "{art}/verify.json"], "inside the artifact"),
    (["--arch", "riscv"], "unknown --arch"),
])
def test_verify_bad_options_fail_before_emulation(artifact_copy, options, fragment):
    result = run("verify", artifact_copy, *[o.format(art=artifact_copy) for o in options])
    assert_error_line(result, fragment)
    assert not (artifact_copy / "verify.json").exists()


def test_sixteen_bit_calibration_images_are_scaled_not_clipped(tmp_path):
    """A 16-bit PNG calibrates like its 8-bit twin (before, every value > 255 became white)."""
    from PIL import Image

    from edgekit.data import Preprocessing

    ramp = (np.linspace(0, 65535, 32 * 32).reshape(32, 32)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    Image.fromarray((ramp // 257).astype(np.uint8)).save(tmp_path / "flat.png")
    gray = Preprocessing(input_size=(32, 32), channels=1, mean=(0.0,), std=(1.0,))
    deep, flat = gray.load(tmp_path / "deep.png"), gray.load(tmp_path / "flat.png")
    assert deep.max() == pytest.approx(1.0, abs=1e-3) and deep.min() == pytest.approx(0.0, abs=1e-3)
    assert np.abs(deep - flat).max() < 2 / 255
