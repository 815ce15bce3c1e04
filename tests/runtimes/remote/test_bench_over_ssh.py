"""`edgekit bench --host` and `targets --probe --host` against a real sshd on 127.0.0.1."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from edgekit.benchmark.run import bench_artifact
from edgekit.cli.commands import cli


def run_cli(*args: str):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.output


def test_remote_bench_brings_back_the_local_report_shape(ssh_board, cpu_artifact, pattern_data, tmp_path):
    code, output = run_cli("bench", cpu_artifact, *ssh_board.cli_options(), "--runs", 10, "--warmup", 2,
                           "--data", pattern_data["val"], "--json", tmp_path / "board.json")
    assert code == 0, output
    report = json.loads((tmp_path / "board.json").read_text())
    assert report["host"]["board"] == f"{ssh_board.address}:{ssh_board.port}"
    assert report["host"]["onnxruntime"] and report["host"]["cpu"] != "unknown"
    rows = {row["file"]: row for row in report["results"]}
    # The PyTorch checkpoint stays home: the board runner runs ONNX Runtime models only.
    assert set(rows) == {"model_fp32.onnx", "model_int8.onnx"}
    for row in rows.values():
        assert row["ok"], row.get("error")
        assert 0 < row["latency_ms"]["p50"] <= row["latency_ms"]["p99"] and row["peak_rss_mb"] > 20
        assert row["size_mb"] == pytest.approx((cpu_artifact / row["file"]).stat().st_size / 1e6)
    # Same models, same images: the board's top-1 must equal a local run's, model by model.
    local = {row["file"]: row for row in bench_artifact(cpu_artifact, data=pattern_data["val"], runs=2,
                                                          warmup=0)["results"]}
    for name, row in rows.items():
        assert row["top1"] == local[name]["top1"]
    assert rows["model_int8.onnx"]["agreement_with_fp32"] >= 0.9
    assert f"board {ssh_board.address}:{ssh_board.port}" in " ".join(output.split())


def test_probe_reads_the_boards_cpu(ssh_board):
    code, output = run_cli("targets", "--probe", *ssh_board.cli_options())
    assert code == 0, output
    assert f"board {ssh_board.address}:{ssh_board.port}: x86_64" in output
    assert "verdict: int8" in output


def test_unknown_host_key_is_refused_until_trusted(ssh_board, cpu_artifact, tmp_path):
    empty = tmp_path / "known_hosts"
    options = ["--host", ssh_board.address, "--port", ssh_board.port, "--identity", ssh_board.client_key,
               "--known-hosts", empty]
    code, output = run_cli("targets", "--probe", *options)
    assert code == 1 and "is not in" in output and "SHA256:" in output and "--trust-new-host" in output
    assert not empty.exists()
    code, output = run_cli("targets", "--probe", *options, "--trust-new-host")
    assert code == 0, output
    recorded = empty.read_text()
    assert f"[127.0.0.1]:{ssh_board.port}" in recorded and ssh_board.host_public_key.split()[1] in recorded
    code, output = run_cli("targets", "--probe", *options)  # now known: no flag needed
    assert code == 0, output


def test_changed_host_key_is_refused_even_with_trust_new_host(ssh_board, tmp_path):
    import paramiko

    wrong = tmp_path / "known_hosts"
    other = paramiko.Ed25519Key.from_private_key_file(str(ssh_board.client_key))
    wrong.write_text(f"[127.0.0.1]:{ssh_board.port} ssh-ed25519 {other.get_base64()}\n")
    code, output = run_cli("targets", "--probe", "--host", ssh_board.address, "--port", ssh_board.port,
                           "--identity", ssh_board.client_key, "--known-hosts", wrong, "--trust-new-host")
    assert code == 1 and "does not match" in output and "refusing to connect" in output


def test_wrong_key_is_an_authentication_error(ssh_board, tmp_path):
    from tests.runtimes.remote.sshd import _keygen

    _keygen(tmp_path / "stranger")
    code, output = run_cli("targets", "--probe", "--host", ssh_board.address, "--port", ssh_board.port,
                           "--identity", tmp_path / "stranger", "--known-hosts", ssh_board.known_hosts)
    assert code == 1 and output.startswith("error: authentication failed") and output.count("\n") == 1


def test_unreachable_port_is_one_line(ssh_board, tmp_path):
    from tests.runtimes.remote.sshd import _free_port

    code, output = run_cli("targets", "--probe", "--host", "someone@127.0.0.1", "--port", _free_port(),
                           "--identity", ssh_board.client_key, "--known-hosts", ssh_board.known_hosts)
    assert code == 1 and output.startswith("error: cannot reach someone@127.0.0.1") and output.count("\n") == 1


def test_board_without_onnxruntime_says_so(ssh_board, cpu_artifact, tmp_path):
    # A Python on the "board" for which `import onnxruntime` fails, as on a fresh Raspberry Pi OS.
    python = tmp_path / "python-without-ort"
    hide_ort = ("import runpy, sys; sys.modules['onnxruntime'] = None; sys.argv = sys.argv[1:]; "
                "runpy.run_path(sys.argv[0], run_name='__main__')")
    python.write_text(f"#!/bin/sh\nexec {sys.executable} -c \"{hide_ort}\" \"$@\"\n")
    python.chmod(0o755)
    code, output = run_cli("bench", cpu_artifact, *ssh_board.cli_options(), "--remote-python", python, "--runs", 2)
    assert code == 1 and "onnxruntime is not installed" in output and "pip install onnxruntime" in output


def test_no_shell_injection_through_names(ssh_board, cpu_artifact, tmp_path):
    marker = tmp_path / "injected"
    code, output = run_cli("bench", cpu_artifact, *ssh_board.cli_options(), "--runs", 2,
                           "--remote-python", f"python3; touch {marker}")
    assert code == 1 and "no python3; touch" in output
    assert not marker.exists()
    # An artifact folder whose name is shell syntax still benches: only fixed names travel.
    import shutil

    odd = shutil.copytree(cpu_artifact, tmp_path / "a b $(touch x) ; 'q'")
    code, output = run_cli("bench", odd, *ssh_board.cli_options(), "--runs", 2, "--warmup", 0)
    assert code == 0, output
