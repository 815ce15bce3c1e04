import platform

import pytest
from click.testing import CliRunner

from edgekit.cli.commands import cli
from edgekit.targets.isa import emulation, parse_cpuinfo, probe_local

XEON = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 avx512f avx512_vnni amx_tile amx_int8
"""
PI4 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU part\t: 0xd08
"""
PI5 = """processor\t: 0
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU part\t: 0xd0b
"""
OLD_X86 = "model name\t: Intel(R) Xeon(R) E5-2680 v4\nflags\t\t: fpu sse2 avx avx2 fma\n"


def test_x86_with_vnni_and_amx_pays_off():
    report = parse_cpuinfo(XEON, arch="x86_64")
    assert report.int8_features == ["avx512_vnni", "amx_int8"] and report.int8_pays_off
    assert report.model_name.startswith("Intel(R) Xeon(R) Platinum")


def test_pi4_cortex_a72_has_no_dot_product():
    report = parse_cpuinfo(PI4, arch="aarch64")
    assert report.model_name == "Cortex-A72" and not report.int8_pays_off
    assert "asimddp" in report.verdict() and "size and memory" in report.verdict()


def test_pi5_cortex_a76_has_dot_product():
    report = parse_cpuinfo(PI5, arch="aarch64")
    assert report.int8_features == ["asimddp"] and report.model_name == "Cortex-A76"


def test_x86_without_vnni_may_not_pay_off():
    assert not parse_cpuinfo(OLD_X86, arch="x86_64").int8_pays_off


def test_probe_on_this_machine_agrees_with_its_cpuinfo_and_the_cli_prints_it():
    report = probe_local()
    flags = open("/proc/cpuinfo").read()
    assert report.int8_pays_off == any(f in flags.split() for f in ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"))
    result = CliRunner().invoke(cli, ["targets", "--probe"])
    assert result.exit_code == 0 and report.verdict().split(":")[0] in " ".join(result.output.split())


def test_a_cpu_that_denies_the_vnni_its_cpuinfo_lists_is_taken_for_emulated():
    if platform.machine() != "x86_64":
        pytest.skip("x86 CPUID")
    haswell = {"AVX2": True, "AVX512F": False, "AVX512VNNI": False}
    assert "emulated CPU" in emulation(haswell, {"avx512_vnni", "avx2"})
    assert emulation(haswell, {"avx2"}) is None  # a real AVX2-only CPU: its cpuinfo agrees
    assert emulation({"AVX2": True, "AVX512F": True, "AVX512VNNI": True}, {"avx512_vnni"}) is None
    assert emulation() is None  # this test itself runs natively
