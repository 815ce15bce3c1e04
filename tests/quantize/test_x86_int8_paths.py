"""The x86 ISA level as a test axis, on any machine: each CPU edgekit meets is pretended here.

ONNX Runtime's int8 kernels depend on the CPU (VNNI: exact u8 x s8; AVX2 or AVX-512 without VNNI:
saturating u8 x s8, or exact u8 x u8 with session.x64quantprecision=1). edgekit reads the CPU once
(board_runner.int8_saturates_here) and everything downstream follows: session options, the host
record of bench, the build's record of where its numbers come from. Each path is forced here by
pretending numpy's CPUID answer, so a VNNI developer machine runs the AVX2 paths and the reverse.
tests/runtimes/emulation/test_x86_without_vnni.py runs the real kernels of an AVX2 CPU under qemu.
"""

from __future__ import annotations

import pytest

from edgekit.runtimes import board_runner
from edgekit.runtimes.board_runner import DEFAULT_KERNELS, EXACT_INT8_OPTIONS, EXACT_KERNELS, RunnerError
from edgekit.targets import isa
from tests.conftest import CPUS, SATURATES


def _entry(options, key: str) -> str | None:
    try:
        return options.get_session_config_entry(key)
    except RuntimeError:  # ORT raises for a key that was never set
        return None


@pytest.mark.parametrize("cpu", list(CPUS))
def test_each_cpu_gets_exact_int8_sessions_where_its_kernels_saturate(pretend_cpu, cpu):
    import onnxruntime as ort

    pretend_cpu(cpu)
    assert board_runner.int8_saturates_here() is SATURATES[cpu]
    exact = board_runner.ort_session_options(ort, 1)  # what every artifact's int8 asks for by default
    assert _entry(exact, "session.x64quantprecision") == ("1" if SATURATES[cpu] else None)
    assert board_runner.session_config_here(EXACT_KERNELS) == (EXACT_INT8_OPTIONS if SATURATES[cpu] else {})
    # A plan that chose ORT's default kernels gets no option on any CPU.
    assert _entry(board_runner.ort_session_options(ort, 1, DEFAULT_KERNELS), "session.x64quantprecision") is None
    assert board_runner.host_info()["ort_session_config"] == (EXACT_INT8_OPTIONS if SATURATES[cpu] else {})


def test_an_unknown_kernel_choice_is_refused_in_one_line(pretend_cpu):
    pretend_cpu("avx2")
    with pytest.raises(RunnerError, match="x86_int8_kernels must be one of exact, ort-default"):
        board_runner.session_config_here("fastest")


@pytest.mark.parametrize("cpu", ["avx2", "avx512_vnni"])
def test_a_measure_row_says_which_session_options_its_numbers_came_from(pretend_cpu, cpu, cpu_artifact):
    pretend_cpu(cpu)
    job = {"model_path": str(cpu_artifact / "model_int8.onnx"), "threads": 1, "runs": 2, "warmup": 0,
           "input_shape": [1, 3, 32, 32]}
    exact_row = board_runner.measure(job)
    default_row = board_runner.measure({**job, "x86_int8_kernels": DEFAULT_KERNELS})
    assert exact_row["ort_session_config"] == (EXACT_INT8_OPTIONS if cpu == "avx2" else {})
    assert default_row["ort_session_config"] == {}


@pytest.mark.parametrize("cpu,level", [("avx2", "avx2"), ("avx512", "avx512"), ("avx512_vnni", "avx512_vnni"),
                                       ("unknown x86", "sse4")])
def test_the_isa_level_is_read_from_cpuid(cpu, level):
    assert isa.x86_isa_level(CPUS[cpu][1]) == level


def test_the_words_for_each_int8_path_name_its_arithmetic():
    assert "exact" in isa.ort_int8_kernels(EXACT_KERNELS, weight_bits=8, saturates=False)
    assert "x64quantprecision" in isa.ort_int8_kernels(EXACT_KERNELS, weight_bits=8, saturates=True)
    assert "saturate" in isa.ort_int8_kernels(DEFAULT_KERNELS, weight_bits=8, saturates=True)
    assert "7-bit" in isa.ort_int8_kernels(DEFAULT_KERNELS, weight_bits=7, saturates=True)


@pytest.mark.parametrize("cpu", ["avx2", "avx512_vnni"])
def test_the_build_host_record_follows_the_cpu(pretend_cpu, monkeypatch, cpu):
    pretend_cpu(cpu)
    monkeypatch.setattr(isa, "probe_local", lambda: isa.IsaReport("x86_64", "Some CPU", frozenset({"avx2"})))
    record = isa.build_host_record(runtime="onnxruntime", kernels=EXACT_KERNELS, weight_bits=8)
    assert record["isa_level"] == cpu
    assert ("x64quantprecision" in record["ort_int8_kernels"]) is (cpu == "avx2")
    assert "AVX2" in record["cpuid"] and ("AVX512VNNI" in record["cpuid"]) is (cpu == "avx512_vnni")
