"""Which int8 instructions a CPU has, read from /proc/cpuinfo, and what that means for int8 models.

x86: VNNI (avx512_vnni, avx_vnni) multiplies-and-adds int8 in one instruction; AMX (amx_int8) adds
tile matrix units. ARM: the dot-product extension (asimddp, ARMv8.2+) and i8mm (ARMv8.6) play the
same role. Without any of them int8 inference must widen to 16/32-bit lanes and often gains little
latency over fp32; it still cuts model size and memory by about 4x.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.targets.profiles import ARCH_ALIASES

INT8_FEATURES = {
    "x86_64": ("avx512_vnni", "avx_vnni", "amx_int8"),
    "aarch64": ("asimddp", "i8mm"),
}


@dataclass(frozen=True)
class IsaReport:
    arch: str
    model_name: str
    features: frozenset[str]

    @property
    def int8_features(self) -> list[str]:
        return [f for f in INT8_FEATURES.get(self.arch, ()) if f in self.features]

    @property
    def int8_pays_off(self) -> bool:
        return bool(self.int8_features)

    def verdict(self) -> str:
        if self.int8_pays_off:
            return (f"int8 should pay off: {', '.join(self.int8_features)} present "
                    "(fused int8 multiply-accumulate); expect int8 faster than fp32 where the model is compute-bound")
        wanted = " / ".join(INT8_FEATURES.get(self.arch, ())) or "no known int8 extension for this architecture"
        return (f"int8 may not pay off in latency: no {wanted} on this CPU; int8 still cuts size and memory "
                "about 4x, so ship fp32 beside it and measure both")

    def to_dict(self) -> dict:
        return {"arch": self.arch, "cpu": self.model_name, "int8_features": self.int8_features,
                "int8_pays_off": self.int8_pays_off, "verdict": self.verdict()}


def parse_cpuinfo(text: str, *, arch: str) -> IsaReport:
    """Features of the first processor block ('flags' on x86, 'Features' on ARM).

    ``arch`` is what `uname -m` or platform.machine() says (arm64 and amd64 are normalised).
    """
    arch = ARCH_ALIASES.get(arch.lower(), arch.lower())
    features: set[str] = set()
    model_name = board = ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key in ("flags", "features") and not features:
            features = set(value.split())
        elif key in ("model name", "cpu model", "hardware") and not model_name:
            model_name = value.strip()
        elif key == "cpu part" and not model_name:
            model_name = ARM_PARTS.get(value.strip().lower(), f"ARM part {value.strip()}")
        elif key == "model" and not value.strip().isdigit():
            board = value.strip()  # a Raspberry Pi's kernel names the board here; x86 puts a number
    if board:
        model_name = f"{model_name} ({board})" if model_name else board
    return IsaReport(arch=arch, model_name=model_name or "unknown", features=frozenset(features))


# /proc/cpuinfo on ARM names no model, only the part number.
ARM_PARTS = {"0xd03": "Cortex-A53", "0xd08": "Cortex-A72", "0xd0b": "Cortex-A76", "0xd0c": "Neoverse-N1",
             "0xd40": "Neoverse-V1", "0xd46": "Cortex-A510", "0xd4b": "Cortex-A78C", "0xd4f": "Neoverse-V2"}


def probe_local(cpuinfo: Path = Path("/proc/cpuinfo")) -> IsaReport:
    import platform

    return parse_cpuinfo(cpuinfo.read_text(), arch=platform.machine())


def describe_host(info: dict, board: str | None = None) -> dict:
    """A bench report's `host` block, from the board runner's `info` (here or on a board over SSH)."""
    isa = parse_cpuinfo(info.get("cpuinfo", ""), arch=info["arch"])
    return {"cpu": isa.model_name, "arch": info["arch"], "logical_cores": info.get("logical_cores"),
            "os": info.get("os"), "kernel": info.get("kernel"), "python": info.get("python"),
            "numpy": info.get("numpy"), "onnxruntime": info.get("onnxruntime"), "board": board,
            "int8_features": isa.int8_features, "int8_verdict": isa.verdict(),
            # Older runners report nothing here; they ran ONNX Runtime's defaults.
            "ort_session_config": info.get("ort_session_config", {})}


# ---- the x86 ISA level and ONNX Runtime's int8 kernels on it --------------------------------------
# ORT picks its int8 kernels from CPUID: u8 x s8 with VNNI (exact), u8 x s8 with vpmaddubsw on AVX2 or
# AVX-512 without VNNI (int16 pair sums saturate), or u8 x u8 with session.x64quantprecision=1 (exact).

def x86_isa_level(cpuid: dict) -> str:
    """The level that decides ORT's int8 kernels: avx512_vnni, avx512 (no VNNI), avx2, or below."""
    if cpuid.get("AVX512VNNI"):
        return "avx512_vnni"
    if cpuid.get("AVX512F"):
        return "avx512"
    return "avx2" if cpuid.get("AVX2") else "sse4"


def ort_int8_kernels(kernels: str, *, weight_bits: int, saturates: bool) -> str:
    """In words: which int8 arithmetic ONNX Runtime runs for a model asking for ``kernels``
    (board_runner.X86_INT8_KERNELS) on an x86 CPU that saturates or not."""
    if not saturates:
        return "u8 x s8 with VNNI: exact"
    if weight_bits <= 7:
        return "u8 x s8 with vpmaddubsw on 7-bit weights: exact without any session option"
    if kernels == "exact":
        return "u8 x u8 (session.x64quantprecision=1): exact, slower than u8 x s8"
    return "u8 x s8 with vpmaddubsw (ORT's default): int16 pair sums may saturate, accuracy measured with them"


def build_host_record(*, runtime: str, kernels: str | None = None, weight_bits: int | None = None) -> dict:
    """The manifest's ``build_host``: the CPU that the build's accuracy and latency numbers come from
    and, for an ONNX Runtime int8 model on x86, the int8 kernels they were measured with."""

    from edgekit.runtimes.board_runner import cpuid_features, int8_saturates_here

    local = probe_local()
    record = {"arch": local.arch, "cpu": local.model_name, "int8_features": local.int8_features}
    if local.arch != "x86_64":
        return record
    cpuid = cpuid_features()
    record["isa_level"] = x86_isa_level(cpuid)
    record["cpuid"] = sorted(k for k in ("AVX2", "AVX512F", "AVX512VNNI", "AVX512BF16") if cpuid.get(k))
    if runtime == "onnxruntime" and kernels is not None:
        saturates = int8_saturates_here()
        record["ort_int8_kernels"] = ort_int8_kernels(kernels, weight_bits=weight_bits or 8, saturates=saturates)
    if (why := emulation(cpuid, local.features)) is not None:
        record["emulated"] = why
    return record


def emulation(cpuid: dict | None = None, cpuinfo_features: frozenset | set | None = None) -> str | None:
    """Why this process runs on an emulated CPU, or None. Time measured there says nothing about
    any real CPU's speed (qemu translates every instruction), so latency is not measured there."""
    from edgekit.core.processes import runs_under_qemu

    if runs_under_qemu():
        return "qemu user-mode emulation (its /proc/self/stat is made up)"
    import platform

    if platform.machine() != "x86_64":
        return None
    if cpuid is None:
        from edgekit.runtimes.board_runner import cpuid_features

        cpuid = cpuid_features()
    features = probe_local().features if cpuinfo_features is None else cpuinfo_features
    if x86_isa_level(cpuid) != "avx512_vnni" and "avx512_vnni" in features:
        return "CPUID shows no VNNI but /proc/cpuinfo does: an emulated CPU (e.g. qemu -cpu Haswell)"
    return None


def why_latency_not_measured_here(target) -> str | None:
    """Why the build cannot time models for ``target`` (a Target profile) on this host, or None."""
    import platform

    if not target.runs_on_this_host:
        return f"this host is {platform.machine()}, the target is {target.arch}"
    if (emulated := emulation()) is not None:
        return f"this host's CPU is emulated ({emulated}), so its time says nothing about a real CPU's"
    return None
