"""`edgekit build --host`: the latency check and every int8 plan are timed on the board (a loopback sshd)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgekit.cli.commands import cli


def run_cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.output


def _build(ssh_board, trained_tiny, pattern_data, out, *extra):
    return run_cli("build", "-m", "tiny_cnn", "--weights", trained_tiny["checkpoint"], "--calib", pattern_data["train"],
                   "--calib-size", 32, "-o", out, *ssh_board.cli_options(), *extra)


def test_planned_build_times_every_plan_on_the_board(ssh_board, trained_tiny, pattern_data, tmp_path):
    out = tmp_path / "art"
    code, output = _build(ssh_board, trained_tiny, pattern_data, out, "-t", "cpu", "--max-drop", 5,
                          "--val", pattern_data["val"], "--plan-budget", 600)
    assert code == 0, output
    manifest = json.loads((out / "manifest.json").read_text())
    label = f"{ssh_board.address}:{ssh_board.port}"
    board = manifest["latency_check"]["board"]
    assert board["board"] == label and board["onnxruntime"] and board["cpu"] != "unknown"
    assert set(manifest["latency_check"]["p50_ms"]) == {"fp32", "int8"} or manifest["quantization"].get("skipped")
    plan = manifest["quantization_plan"]
    assert plan["latency"].startswith(f"latency measured on board {label}")
    tried = [c for c in plan["candidates"] if c["status"] == "tried"]
    assert len(tried) >= 3 and all(c["p50_ms"] > 0 for c in tried)  # fp32 and the int8 plans, all timed
    report = " ".join((out / "REPORT.md").read_text().split())
    assert f"on board {label}:" in report
    # Nothing is left on the board: the build's scratch folder went with the connection.
    assert "timing on board" in " ".join(output.split())


def test_a_board_of_another_architecture_is_refused_before_any_work(ssh_board, trained_tiny, pattern_data, tmp_path):
    out = tmp_path / "art"
    code, output = _build(ssh_board, trained_tiny, pattern_data, out, "-t", "rpi4")
    assert code == 1 and "is x86_64, target rpi4 is aarch64" in output and "--host" in output, output
    assert not out.exists()


def test_a_runtime_the_board_runner_cannot_run_is_refused(ssh_board, trained_tiny, pattern_data, tmp_path):
    code, output = _build(ssh_board, trained_tiny, pattern_data, tmp_path / "art", "-t", "openvino")
    assert code == 1 and "--host: target openvino runs openvino" in " ".join(output.split()), output


@pytest.mark.parametrize("extra,fragment", [(["--port", "22"], "--port/--identity/--known-hosts/--trust-new-host need --host")])
def test_board_options_need_host(trained_tiny, pattern_data, tmp_path, extra, fragment):
    code, output = run_cli("build", "-m", "tiny_cnn", "-t", "cpu", "--fp32-only", "-o", tmp_path / "x", *extra)
    assert code != 0 and fragment in output
