"""int8 on an x86 CPU without VNNI, emulated: edgekit's ONNX Runtime sessions there must give the
int8 model's exact arithmetic, where ORT's defaults saturate.

qemu-x86_64 -cpu Haswell runs this machine's own Python and ONNX Runtime on an emulated AVX2 CPU
(no AVX-512, no VNNI); ORT picks its kernels from CPUID, so they are the ones such a CPU gets.
Correctness only: emulation says nothing about speed.
"""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgekit import board_runner
from edgekit.runtimes import ort_logits
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
from edgekit.board_runner import int8_saturates_here
from edgekit.runtimes import ort_logits
assert int8_saturates_here(), "the emulated CPU should have no VNNI"
np.save(sys.argv[3], ort_logits(sys.argv[1], np.load(sys.argv[2]), batch_size=1, threads=1))
"""


@pytest.fixture()
def haswell():
    require_system_tool(QEMU_X86 is not None, "qemu-x86_64 not installed (apt-get install qemu-user-static)")
    if board_runner.platform.machine() != "x86_64":
        pytest.skip("emulates an x86 CPU with this machine's x86 Python")

    def run(*args, timeout=300):
        result = subprocess.run([QEMU_X86, "-cpu", "Haswell", sys.executable, *map(str, args)],
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, result.stderr[-2000:]
        return result
    return run


def test_edgekit_int8_on_an_emulated_avx2_cpu_is_the_exact_int8_where_ort_defaults_saturate(
        haswell, cpu_artifact, trained_tiny, tmp_path):
    model = cpu_artifact / "model_int8.onnx"
    images = np.ascontiguousarray(trained_tiny["x_val"][:12])
    np.save(tmp_path / "images.npy", images)
    # Exact here either way: VNNI's u8 x s8 adds in int32, and without VNNI ort_session asks for u8u8.
    reference = ort_logits(model, images, batch_size=1, threads=1)

    haswell("-c", DEFAULT_SESSION, model, tmp_path / "images.npy", tmp_path / "default.npy")
    haswell("-c", EDGEKIT_SESSION, model, tmp_path / "images.npy", tmp_path / "edgekit.npy")
    haswell(board_runner.__file__, "infer", model, tmp_path / "images.npy", tmp_path / "runner.npy",
            "--threads", "1")

    # The emulation reaches ORT's saturating kernels (else this test would show nothing)...
    assert np.abs(np.load(tmp_path / "default.npy") - reference).max() > 1e-3
    # ...and edgekit's sessions, in process and on a board, avoid them: bit for bit the exact int8.
    assert np.array_equal(np.load(tmp_path / "edgekit.npy"), reference)
    assert np.array_equal(np.load(tmp_path / "runner.npy"), reference)
