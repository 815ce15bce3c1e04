"""`edgekit bench --host` against an emulated Raspberry Pi 4: sshd whose ForceCommand runs every
session with a Pi 4's /proc/cpuinfo and an aarch64 python3 (onnxruntime, numpy) under qemu as a
Cortex-A72. Correctness only: emulated latencies are never asserted or reported as performance.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil

import pytest
from click.testing import CliRunner

from edgekit.benchmark.run import bench_artifact
from edgekit.cli.commands import cli
from tests.runtimes.remote.sshd import start_sshd
from tests.system_tools import require_system_tool

pytestmark = pytest.mark.slow


def _require_emulation():
    require_system_tool(shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64"),
                        "qemu user-mode emulation missing: apt-get install qemu-user-static")
    require_system_tool(os.geteuid() == 0 and shutil.which("unshare"),
                        "the emulated board binds a Pi 4 /proc/cpuinfo in a mount namespace: needs root")


def _write_board_session(folder, arm64) -> str:
    """The ForceCommand: SFTP as usual; commands in a shell that looks like a Pi 4 to its programs."""
    from edgekit.runtimes.emulation.arm64 import pi4_cpuinfo

    shims = folder / "shims"
    shims.mkdir()
    argv, env = arm64.command(timeout_s=1200)
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items() if name != "PATH")
    (shims / "python3").write_text(f"#!/bin/sh\n{exports}exec {shlex.join(argv)} \"$@\"\n")
    # uname is the host's x86 binary; answer -m the way the emulated CPU does.
    (shims / "uname").write_text(f"#!/bin/sh\n{exports}exec {shlex.join(argv)} -c "
                                 "'import os, sys; print(os.uname().machine if sys.argv[1:] == [\"-m\"] "
                                 "else \" \".join(os.uname()))' \"$@\"\n")
    cpuinfo = folder / "cpuinfo"
    cpuinfo.write_text(pi4_cpuinfo())
    session = folder / "board-session"
    session.write_text(f"""#!/bin/sh
case "$SSH_ORIGINAL_COMMAND" in
    *sftp-server*) exec /usr/lib/openssh/sftp-server ;;
esac
exec unshare -m /bin/sh -c \\
    'mount --bind {cpuinfo} /proc/cpuinfo && PATH={shims}:$PATH exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"'
""")
    for script in (shims / "python3", shims / "uname", session):
        script.chmod(0o755)
    return str(session)


@pytest.fixture(scope="module")
def pi4_board(tmp_path_factory):
    _require_emulation()
    from edgekit.runtimes.emulation.arm64 import ensure_arm64_python

    folder = tmp_path_factory.mktemp("pi4")
    board = start_sshd(folder / "sshd", force_command=_write_board_session(folder, ensure_arm64_python()))
    yield board
    board.stop()


def _options(board) -> list[str]:
    return ["--host", board.address, "--port", str(board.port), "--identity", str(board.client_key),
            "--known-hosts", str(board.known_hosts)]


def test_probe_sees_a_cortex_a72_without_dot_product(pi4_board):
    result = CliRunner().invoke(cli, ["targets", "--probe", *_options(pi4_board)])
    assert result.exit_code == 0, result.output
    assert "aarch64, Cortex-A72 (Raspberry Pi 4 Model B Rev 1.4); int8 instructions: none" in result.output
    assert "may not pay off" in result.output


def test_bench_on_emulated_pi4_matches_x86_predictions(pi4_board, rpi4_artifact, pattern_data, tmp_path):
    result = CliRunner().invoke(cli, ["bench", str(rpi4_artifact), *_options(pi4_board), "--runs", "3",
                                      "--warmup", "1", "--limit", "40", "--data", str(pattern_data["val"]),
                                      "--json", str(tmp_path / "pi.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "pi.json").read_text())
    assert report["host"]["arch"] == "aarch64" and report["host"]["cpu"].startswith("Cortex-A72")
    assert report["host"]["int8_features"] == []
    local = {row["file"]: row for row in bench_artifact(rpi4_artifact, data=pattern_data["val"], limit=40,
                                                          runs=1, warmup=0)["results"]}
    for row in report["results"]:
        assert row["ok"], row.get("error")
        # Same images, same quantized graph: aarch64 ORT must classify exactly as x86 ORT does.
        assert row["top1"] == local[row["file"]]["top1"]
    int8 = next(row for row in report["results"] if row["precision"] == "int8")
    assert int8["agreement_with_fp32"] >= 0.9


def test_a_build_refuses_to_time_on_an_emulated_board(pi4_board, trained_tiny, pattern_data, tmp_path):
    """The right architecture is not enough: a "board" that is qemu would hand the planner emulated time."""
    out = tmp_path / "art"
    result = CliRunner().invoke(cli, ["build", "-m", "tiny_cnn", "--weights", str(trained_tiny["checkpoint"]),
                                      "-t", "rpi4", "--calib", str(pattern_data["train"]), "-o", str(out),
                                      *_options(pi4_board), "--remote-python", "python3"])
    assert result.exit_code == 1 and "runs its python under qemu user-mode emulation" in result.output, result.output
    assert not out.exists()
