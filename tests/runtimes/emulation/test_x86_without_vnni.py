"""int8 on an x86 CPU without VNNI, emulated: edgekit's ONNX Runtime sessions there must give the
int8 model's exact arithmetic, where ORT's defaults saturate, and edgekit must build, plan and bench
there end to end.

qemu-x86_64 -cpu Haswell runs this machine's own Python and ONNX Runtime on an emulated AVX2 CPU
(no AVX-512, no VNNI); ORT picks its kernels from CPUID, so they are the ones such a CPU gets.
Correctness only: emulation says nothing about speed (the planner's timings there only rank).
A child process of an emulated one runs natively (binfmt_misc has no entry for the host's own
architecture): EDGEKIT_WORKER_PREFIX puts edgekit's latency workers under the same emulation.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

from pathlib import Path

import numpy as np
import pytest

from edgekit.runtimes import board_runner
from edgekit.runtimes.emulation import INFER_DRIVER
from edgekit.runtimes.sessions import ort_logits
from tests.system_tools import require_system_tool

QEMU_X86 = shutil.which("qemu-x86_64-static") or shutil.which("qemu-x86_64")
# ONNX Runtime's own defaults, as a user's bare InferenceSession would run the model.
DEFAULT_SESSION = """
import sys, numpy as np, onnxruntime as ort
options = ort.SessionOptions(); options.intra_op_num_threads = 1
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
images = np.load(sys.argv[2]); name = session.get_inputs()[0].name
np.save(sys.argv[3], np.concatenate([session.run(None, {name: images[i:i + 1]})[0] for i in range(len(images))]))
"""
# edgekit's in-process path (bench here, verify's x86 reference, the planner, diff).
EDGEKIT_SESSION = """
import sys, numpy as np
from edgekit.runtimes.board_runner import int8_saturates_here
from edgekit.runtimes.sessions import ort_logits
assert int8_saturates_here(), "the emulated CPU should have no VNNI"
np.save(sys.argv[3], ort_logits(sys.argv[1], np.load(sys.argv[2]), batch_size=1, threads=1))
"""


EMULATOR = [str(QEMU_X86), "-cpu", "Haswell"]


# qemu 7.2's user mode can leave the child of a fork() from a multithreaded guest stuck in a futex
# before its exec (seen once in ~80 forks here: a bench worker's fork during a build). An emulated
# command that runs past its time limit is killed with everything it started and run once more;
# a second time out fails the test.
ATTEMPTS = 2


def _run_emulated(argv: list, timeout: float) -> subprocess.CompletedProcess:
    # One thread for OpenMP (torch): fewer guest threads running at fork time, less to deadlock on.
    env = dict(os.environ, EDGEKIT_NO_PROGRESS="1", EDGEKIT_WORKER_PREFIX=json.dumps(EMULATOR), OMP_NUM_THREADS="1")
    for attempt in range(1, ATTEMPTS + 1):
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                   start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
            return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the forked children too, stuck or not
            process.communicate()
            if attempt == ATTEMPTS:
                raise
            print(f"emulated command timed out after {timeout:.0f} s (attempt {attempt}); running it again")


@pytest.fixture()
def haswell():
    require_system_tool(QEMU_X86 is not None, "qemu-x86_64 not installed (apt-get install qemu-user-static)")
    if board_runner.platform.machine() != "x86_64":
        pytest.skip("emulates an x86 CPU with this machine's x86 Python")

    def run(*args, timeout=300):
        result = _run_emulated([*EMULATOR, sys.executable, *map(str, args)], timeout)
        assert result.returncode == 0, result.stderr[-2000:]
        return result
    return run


def test_edgekit_int8_on_an_emulated_avx2_cpu_is_the_exact_int8_where_ort_defaults_saturate(
        haswell, cpu_artifact, trained_tiny, tmp_path):
    from dataclasses import replace

    from edgekit.quantize.ort import quantize_onnx_static
    from edgekit.targets.profiles import load_target

    images = np.ascontiguousarray(trained_tiny["x_val"][:12])
    np.save(tmp_path / "images.npy", images)
    # 8-bit weights, as a plan or a profile without reduce_range makes them.
    model = tmp_path / "int8_8bit.onnx"
    settings = replace(load_target("cpu").quantization, reduce_range=False)
    assert quantize_onnx_static(cpu_artifact / "model_fp32.onnx", model, images, settings)["weight_bits"] == 8
    # Exact here either way: VNNI's u8 x s8 adds in int32, and without VNNI ort_session asks for u8u8.
    reference = ort_logits(model, images, batch_size=1, threads=1)

    haswell("-c", DEFAULT_SESSION, model, tmp_path / "images.npy", tmp_path / "default.npy")
    haswell("-c", EDGEKIT_SESSION, model, tmp_path / "images.npy", tmp_path / "edgekit.npy")
    haswell(str(INFER_DRIVER), model, tmp_path / "images.npy", tmp_path / "runner.npy",
            "--threads", "1")

    # The emulation reaches ORT's saturating kernels (else this test would show nothing)...
    assert np.abs(np.load(tmp_path / "default.npy") - reference).max() > 1e-3
    # ...and edgekit's sessions, in process and on a board, avoid them: bit for bit the exact int8.
    assert np.array_equal(np.load(tmp_path / "edgekit.npy"), reference)
    assert np.array_equal(np.load(tmp_path / "runner.npy"), reference)


def test_the_cpu_profiles_seven_bit_int8_is_exact_on_an_avx2_cpu_with_a_plain_ort_session(
        haswell, cpu_artifact, trained_tiny, tmp_path):
    """What anyone gets who loads the artifact's int8 with ORT's defaults and no option: the exact int8."""
    model = cpu_artifact / "model_int8.onnx"
    images = np.ascontiguousarray(trained_tiny["x_val"][:12])
    np.save(tmp_path / "images.npy", images)
    haswell("-c", DEFAULT_SESSION, model, tmp_path / "images.npy", tmp_path / "default.npy")
    assert np.array_equal(np.load(tmp_path / "default.npy"), ort_logits(model, images, batch_size=1, threads=1))


# Held-out top-1 of the shipped int8 and of fp32, run under emulation with the kernels the manifest names.
SHIPPED_ACCURACY = """
import json, sys, numpy as np
from pathlib import Path
from edgekit.runtimes.sessions import ort_logits
folder, images, labels = Path(sys.argv[1]), np.load(sys.argv[2]), np.load(sys.argv[3])
manifest = json.loads((folder / "manifest.json").read_text())
top1 = {}
for entry in manifest["models"]:
    if entry["runtime"] == "onnxruntime":
        logits = ort_logits(folder / entry["file"], images, kernels=entry.get("x86_int8_kernels", "exact"))
        top1[entry["precision"]] = float(100 * np.mean(logits.argmax(1) == labels))
print(json.dumps(top1))
"""


def test_an_avx2_cpu_plans_builds_and_benches_an_int8_it_can_load(haswell, pattern_data, trained_tiny, tmp_path):
    """The whole user path on an emulated AVX2 CPU: build with the planner, bench, and the shipped int8
    loads there and stays within the planner's accuracy budget of fp32 on held-out images."""
    started = time.monotonic()
    folder, max_drop = tmp_path / "art", 2.0
    haswell("-m", "edgekit", "build", "-m", "tiny_cnn", "--weights", trained_tiny["checkpoint"], "-t", "cpu",
            "--calib", pattern_data["train"], "--calib-size", 16, "--max-drop", max_drop,
            "--val", pattern_data["val"], "--val-size", 40, "-o", folder, timeout=300)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["build_host"]["isa_level"] == "avx2"  # the build saw the emulated CPU, and says so
    assert "qemu" in manifest["build_host"]["emulated"]
    plan = manifest["quantization_plan"]
    # Emulated time is no CPU's speed: neither the planner nor the build's own check times anything.
    assert "emulated" in plan["latency"] and not manifest["latency_check"]["measured"], manifest["latency_check"]
    names = {c["name"] for c in plan["candidates"] if c["status"] == "tried"}
    # On a CPU without VNNI the planner judged both other kernel paths, with their own arithmetic.
    assert any(n.endswith("+8bit") for n in names) and any(n.endswith("+8bit+ort-default-kernels") for n in names)
    assert plan["chosen"] != "fp32", plan["reason"]  # the tiny model quantizes well: int8 must ship
    int8 = next(m for m in manifest["models"] if m["runtime"] == "onnxruntime" and m["precision"] == "int8")
    chosen = next(c for c in plan["candidates"] if c["name"] == plan["chosen"])
    assert int8.get("x86_int8_kernels", "exact") == chosen["settings"].get("x86_int8_kernels", "exact")

    x_val, y_val = trained_tiny["x_val"], trained_tiny["y_val"]
    np.save(tmp_path / "images.npy", x_val)
    np.save(tmp_path / "labels.npy", y_val)
    top1 = json.loads(haswell("-c", SHIPPED_ACCURACY, folder, tmp_path / "images.npy",
                              tmp_path / "labels.npy").stdout.strip().splitlines()[-1])
    assert top1["int8"] >= top1["fp32"] - max_drop, top1

    haswell("-m", "edgekit", "bench", folder, "--runs", 3, "--warmup", 1, "--json", tmp_path / "bench.json",
            timeout=300)
    report = json.loads((tmp_path / "bench.json").read_text())
    assert all(row["ok"] for row in report["results"]), report["results"]
    row = next(r for r in report["results"] if r["runtime"] == "onnxruntime" and r["precision"] == "int8")
    exact = int8.get("x86_int8_kernels", "exact") == "exact"
    assert row["ort_session_config"] == (board_runner.EXACT_INT8_OPTIONS if exact else {})
    seven_bit = manifest["quantization"]["weight_bits"] == 7
    assert row["int8_kernels"] == ("exact (7-bit)" if seven_bit else "exact (u8u8)" if exact else "may saturate")
    print(f"emulated AVX2 build + accuracy + bench: {time.monotonic() - started:.0f} s")


def test_a_scratch_folder_made_under_emulation_survives_a_native_sweep(haswell, tmp_path):
    """qemu makes up /proc/self/stat for the process it runs: a native edgekit must not take the
    emulated one's scratch folder for a dead process's and delete it mid-build."""
    from edgekit.core.outputs import scratch_folder

    hold = ("import sys, time; from edgekit.core.outputs import scratch_folder\n"
            "with scratch_folder('build') as folder:\n"
            "    print(folder, flush=True); sys.stdin.readline()")
    child = subprocess.Popen([*EMULATOR, sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        made = Path(child.stdout.readline().strip())
        assert made.is_dir()
        with scratch_folder("build"):  # sweeps the folders of edgekit processes that are gone
            pass
        assert made.is_dir()
    finally:
        child.communicate("\n", timeout=120)
    assert not made.exists()  # and the emulated process still cleans up after itself
