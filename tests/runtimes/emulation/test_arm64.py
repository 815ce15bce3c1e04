"""edgekit verify --arch arm64: the emulated Raspberry Pi 4 and the x86-vs-aarch64 comparison.

The unit tests fake the tools they need and run anywhere. The end-to-end tests run a tiny rpi4
artifact under qemu for real; they need only qemu-user-static and mmdebstrap (and, on a cold
cache, ~1 min and network access for the Debian packages and aarch64 wheels).
"""

import json
import os
import shutil
import stat

import numpy as np
import pytest
from click.testing import CliRunner

from edgekit.artifact.folder import write_manifest
from edgekit.artifact.manifest import ArtifactManifest, InputSpec, ModelEntry, ModelInfo, TargetRecord
from edgekit.builder.verify import compare_emulated_logits
from edgekit.cli.commands import cli
from edgekit.core.errors import EdgekitError
from edgekit.data import Preprocessing
from edgekit.runtimes.emulation import arm64
from tests.system_tools import require_system_tool

QEMU = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")


@pytest.fixture()
def needs_qemu():
    require_system_tool(QEMU is not None, "qemu-aarch64 not installed (apt-get install qemu-user-static)")


def run_verify(*args):
    return CliRunner().invoke(cli, ["verify", *[str(a) for a in args]])


def assert_one_line_error(result, fragment):
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.strip().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def fake_artifact(folder, runtimes=("onnxruntime",)):
    folder.mkdir()
    models = []
    for index, runtime in enumerate(runtimes):
        (folder / f"m{index}.bin").write_bytes(b"never loaded")
        models.append(ModelEntry(f"m{index}.bin", runtime, "fp32"))
    # A complete manifest, so that it passes edgekit's schema checks and the tests reach what they test.
    write_manifest(folder, ArtifactManifest(
        model=ModelInfo("fake"), input=InputSpec((1, 3, 8, 8)), models=models,
        target=TargetRecord("rpi4", runtime="onnxruntime", threads=4),
        preprocessing=Preprocessing(input_size=(8, 8), channels=3, mean=(0.5,) * 3, std=(0.5,) * 3)))
    return folder


def fake_tools(tmp_path, **scripts):
    """A bin folder of shell scripts (name -> body); tools left out are simply not on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for name, body in scripts.items():
        path = folder / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return folder


# ---- unit tests (no emulation) -------------------------------------------------------------------

def test_cache_root_follows_edgekit_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "mine"))
    assert arm64.cache_root() == tmp_path / "mine"
    monkeypatch.delenv("EDGEKIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert arm64.cache_root() == tmp_path / "xdg" / "edgekit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert arm64.cache_root() == tmp_path / "home" / ".cache" / "edgekit"


def test_cpuinfo_describes_a_raspberry_pi_4():
    text = arm64.pi4_cpuinfo()
    assert text.count("processor\t:") == 4 and text.count("CPU part\t: 0xd08") == 4
    assert "Features\t: fp asimd evtstrm crc32 cpuid\n" in text
    assert "asimddp" not in text  # a Cortex-A72 has no int8 dot-product


def test_only_arm64_can_be_emulated():
    assert arm64.check_arch("arm64") == arm64.check_arch("AArch64") == "arm64"
    with pytest.raises(EdgekitError, match="only arm64"):
        arm64.check_arch("riscv64")


def test_emulated_command_is_time_limited_and_does_not_leak_the_host_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LD_PRELOAD", "libx86only.so")
    monkeypatch.setenv("PYTHONPATH", "/host/venv")
    python = arm64.Arm64Python(tmp_path, "/usr/bin/qemu-aarch64-static")
    argv, env = python.runner_command("info", timeout_s=30)
    assert argv[:4] == ["timeout", "-k", "10", "30"]
    assert argv[argv.index("/usr/bin/qemu-aarch64-static") + 1:] == [str(python.python), str(arm64.BOARD_RUNNER),
                                                                     "info"]
    assert env["QEMU_CPU"] == "cortex-a72" and env["QEMU_LD_PREFIX"] == str(tmp_path / "rootfs")
    assert env["PYTHONPATH"] == str(tmp_path / "site") and "LD_PRELOAD" not in env
    # The runner's own workers start through qemu too: nothing depends on binfmt_misc.
    assert json.loads(env["EDGEKIT_RUNNER_PYTHON"]) == ["/usr/bin/qemu-aarch64-static", str(python.python)]


@pytest.mark.parametrize("code, fragment", [
    (124, "timed out after 60 s"), (139, "crashed (SIGSEGV)"), (-11, "crashed (SIGSEGV)"), (3, "exit code 3"),
])
def test_runner_failures_are_described_with_the_last_stderr_line(code, fragment):
    message = arm64.describe_failure("run of m.onnx", code, "noise\nqemu: last words\n\n", 60)
    assert fragment in message and "\n" not in message
    assert code == 124 or "qemu: last words" in message


def test_compare_emulated_logits_measures_relative_difference_and_agreement():
    reference = np.array([[1.0, 2.0], [4.0, -1.0]], dtype=np.float32)
    assert compare_emulated_logits(reference, reference.copy())["bit_exact"]
    result = compare_emulated_logits(reference, reference + np.array([[0.0, 0.0], [-6.0, 0.0]], dtype=np.float32))
    assert result["max_abs_diff"] == 6.0 and result["max_norm_diff"] == 1.5
    assert result["top1_agreement"] == 0.5 and not result["bit_exact"]


def test_missing_qemu_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(fake_tools(tmp_path)))
    result = run_verify(fake_artifact(tmp_path / "art"))
    assert_one_line_error(result, "apt-get install qemu-user-static")


def test_missing_mmdebstrap_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(fake_tools(tmp_path, **{"qemu-aarch64-static": "exit 1"})))
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))
    assert_one_line_error(run_verify(fake_artifact(tmp_path / "art")), "apt-get install mmdebstrap")


def test_unknown_arch_and_artifacts_without_verifiable_models_are_refused(tmp_path):
    assert_one_line_error(run_verify(fake_artifact(tmp_path / "a"), "--arch", "riscv64"), "only arm64")
    torch_only = fake_artifact(tmp_path / "b", runtimes=("pytorch",))
    assert_one_line_error(run_verify(torch_only), "no ONNX Runtime or OpenVINO models to verify (it has pytorch)")


def test_wheels_are_chosen_for_the_emulated_glibc_down_to_manylinux2014():
    tags = arm64.manylinux_platforms("2.36")
    assert tags[0] == "manylinux_2_36_aarch64" and tags[-1] == "manylinux2014_aarch64"
    # openvino 2026.4.1's aarch64 wheel and onnxruntime's: one fixed tag would miss one of them.
    assert {"manylinux_2_35_aarch64", "manylinux_2_28_aarch64", "manylinux_2_17_aarch64"} <= set(tags)
    assert len(tags) == 36 - 17 + 2
    assert arm64.manylinux_platforms("2.17") == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    for bad, fragment in (("2.x", "cannot read"), ("2.12", "older than manylinux2014"), ("", "cannot read")):
        with pytest.raises(EdgekitError, match=fragment):
            arm64.manylinux_platforms(bad)


def test_interrupted_set_up_leaves_no_cache_that_is_trusted_later(monkeypatch, tmp_path):
    tools = fake_tools(tmp_path, **{"qemu-aarch64-static": "exit 1",
                                    "mmdebstrap": "echo 'E: cannot reach deb.debian.org' >&2; exit 1"})
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(EdgekitError, match="mmdebstrap could not create .*: E: cannot reach deb.debian.org"):
        arm64.ensure_arm64_python()
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def test_a_root_file_system_whose_python_cannot_say_its_glibc_is_a_one_line_error(monkeypatch, tmp_path):
    tools = fake_tools(tmp_path, **{"qemu-aarch64-static": "echo 'musl libc' ",
                                    "mmdebstrap": 'for last; do :; done; mkdir -p "$last/dev/pts"'})
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))
    assert_one_line_error(run_verify(fake_artifact(tmp_path / "art")), "gives 'musl libc' as its C library, expected glibc")
    assert not any((tmp_path / "cache").glob("arm64-*"))


def test_pip_without_network_is_a_one_line_error(monkeypatch, tmp_path):
    # An empty rootfs whose python3 says its glibc, so that the set-up gets as far as pip.
    tools = fake_tools(tmp_path, **{"qemu-aarch64-static": "echo 'glibc 2.36'",
                                    "mmdebstrap": 'for last; do :; done; mkdir -p "$last/dev/pts"'})
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))
    # No reachable index, no local wheel stores (pip.conf, PIP_FIND_LINKS), no cache.
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    for name, value in {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
                        "PIP_NO_CACHE_DIR": "1", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2"}.items():
        monkeypatch.setenv(name, value)
    result = run_verify(fake_artifact(tmp_path / "art"))
    assert_one_line_error(result, "pip cannot fetch aarch64 wheels of onnxruntime==")
    assert "openvino==" in result.output and "none for glibc 2.36" in result.output
    assert not any((tmp_path / "cache").glob("arm64-*"))


# ---- end to end under qemu -----------------------------------------------------------------------

def test_rpi4_artifact_gives_the_same_answers_on_emulated_aarch64(needs_qemu, rpi4_artifact, pattern_data, tmp_path):
    result = run_verify(rpi4_artifact, "--data", pattern_data["val"], "--limit", 12, "--json", tmp_path / "v.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["passed"] and report["samples"] == 12
    assert report["emulated"]["arch"] == "aarch64" and report["emulated"]["cpu"] == "cortex-a72"
    rows = {row["precision"]: row for row in report["results"]}
    assert set(rows) == {"fp32", "int8"}
    assert rows["int8"]["bit_exact"] and rows["int8"]["max_abs_diff"] == 0.0
    assert rows["fp32"]["max_norm_diff"] < 1e-5
    assert all(row["top1_agreement"] == 1.0 for row in rows.values())
    assert "model_int8.onnx" in result.output and " ms" not in result.output


def test_openvino_artifact_on_emulated_aarch64(needs_qemu, openvino_artifact, pattern_data, tmp_path):
    """The fp32 IR gives the x86 answers on ARM. The NNCF int8 IR does not run on a Cortex-A72 (ARMv8.0,
    no dot product) with OpenVINO 2026.4.1: it fails to compile at a static batch and returns no rows at
    a dynamic one (emulated -cpu neoverse-n1, ARMv8.2, runs it). verify must say so as a failed row; if a
    release changes this, docs/boards.md changes with this test."""
    result = run_verify(openvino_artifact, "--data", pattern_data["val"], "--limit", 8, "--json", tmp_path / "v.json")
    report = json.loads((tmp_path / "v.json").read_text())
    rows = {(row["runtime"], row["precision"]): row for row in report["results"]}
    assert set(rows) == {("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "int8")}
    fp32_ir = rows[("openvino", "fp32")]
    assert fp32_ir["passed"] and fp32_ir["max_norm_diff"] < 1e-5 and fp32_ir["top1_agreement"] == 1.0
    assert report["emulated"]["openvino"] == report["host"]["openvino"]
    int8_ir = rows[("openvino", "int8")]
    assert not int8_ir["passed"] and "openvino cannot load model_int8.xml here" in int8_ir["error"], int8_ir
    assert_one_line_error(result, "openvino/model_int8.xml (openvino cannot load model_int8.xml here")
    assert "FAIL" in result.output and "pass" in result.output


def test_emulated_bench_starts_its_workers_through_qemu(needs_qemu, rpi4_artifact):
    # Each model runs in a child of the emulated runner: exec'ing the aarch64 python directly would
    # need binfmt_misc, so this passes only if the children are started with qemu named explicitly.
    python = arm64.ensure_arm64_python()
    out = python.run_runner("bench", str(rpi4_artifact), "--runs", "1", "--warmup", "0", timeout_s=900)
    report = json.loads(out.strip().splitlines()[-1])
    assert report["host"]["arch"] == "aarch64"
    assert [(row["file"], row["ok"]) for row in report["results"]] == [("model_fp32.onnx", True),
                                                                       ("model_int8.onnx", True)], report["results"]


def test_the_emulated_board_sees_a_pi4_cpu_and_a_crash_is_one_line(needs_qemu, tmp_path):
    python = arm64.ensure_arm64_python()
    info = json.loads(python.run_runner("info", timeout_s=300).splitlines()[-1])
    assert info["arch"] == "aarch64" and "CPU part\t: 0xd08" in info["cpuinfo"]
    # The same Python without the Pi 4 cpuinfo: aarch64 onnxruntime segfaults on the x86 one.
    shadow = tmp_path / "shadow"
    (shadow / "rootfs").mkdir(parents=True)
    for entry in python.rootfs.iterdir():
        if entry.name != "proc":
            (shadow / "rootfs" / entry.name).symlink_to(entry)
    (shadow / "site").symlink_to(python.site)
    with pytest.raises(EdgekitError, match=r"crashed \(SIGSEGV\).*Segmentation fault") as caught:
        arm64.Arm64Python(shadow, python.qemu).run_runner("info", timeout_s=300)
    assert "\n" not in caught.value.one_line()
