"""No board: an emulated Cortex-A72 cost estimate from counted instructions.

The model runs in the cached aarch64 Python (arm64.py) under ``qemu-aarch64 -cpu cortex-a72`` with
edgekit's TCG plugin (insn_classes.c), which counts every executed guest instruction by mnemonic and
operand shape. a72_driver.py runs one inference, marks, runs K more and marks again, so the counts
per inference are (mark 2 - mark 1) / K: interpreter start-up, imports, session creation and the
first run (weight packing) do not count.

Each counted kind is mapped to the micro-ops it issues on the A72's pipes: B (branch), I0/I1
(integer ALU), M (multi-cycle integer), L (load), S (store), F0 and F1 (FP/ASIMD: integer SIMD
multiplies issue on F0 only, pairwise/absolute accumulates and complex shifts on F1 only, FP
multiply-accumulate and most other FP/ASIMD ops on either). The µop counts follow Arm's Cortex-A57/
A72 Software Optimization Guides as encoded in LLVM's Cortex-A57 scheduling model (which LLVM also
uses for the A72); Q-form (128-bit) FP ops take two µops there. The estimate is a throughput bound:
the busiest of the pipes and of 3-wide decode. It ignores memory (caches, DRAM bandwidth, the
A72's hardware prefetch), dependency latencies, branch mispredictions and divider occupancy: it
ranks candidates by compute, it is not a latency prediction.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.core.errors import EdgekitError
from edgekit.runtimes.emulation.arm64 import (
    QEMU_CPU,
    cache_root,
    describe_failure,
    ensure_arm64_python,
    host_versions,
)

HERE = Path(__file__).resolve().parent
PLUGIN_SOURCE = HERE / "insn_classes.c"
DRIVER = HERE / "a72_driver.py"
INSTALL_HINT = "bash scripts/install-system-tools.sh (as root: apt-get install qemu-user gcc libc6-dev, " \
               "then qemu-plugin.h from Debian's qemu source package)"
METHOD = ("estimate, not a measurement: guest instructions counted per inference by a qemu TCG plugin "
          f"(qemu-aarch64 -cpu {QEMU_CPU}), weighted by the Cortex-A72 issue model (pipes B, I0/I1, M, L, S, "
          "F0, F1; µops per instruction after Arm's A57/A72 Software Optimization Guides as in LLVM's "
          "Cortex-A57 model); cycles = the busiest pipe or 3-wide decode; memory effects, dependency "
          "latencies and branch mispredictions are not modelled")
DECODE_WIDTH = 3
DEFAULT_RUNS = 3
TIMEOUT_S = 600

# ---- the issue model -----------------------------------------------------------------------------

Q_ARRANGEMENTS = {"16b", "8h", "4s", "2d"}
D_ARRANGEMENTS = {"8b", "4h", "2s", "1d"}
FP_REGISTERS = {"b", "h", "s", "d", "q"}  # scalar FP/SIMD register files (x and w are integer)
BRANCHES = {"b", "bl", "br", "blr", "ret", "cbz", "cbnz", "tbz", "tbnz"}
SYSTEM = {"nop", "hint", "dmb", "dsb", "isb", "yield", "svc", "mrs", "msr", "brk", "clrex"}
SCALAR_MULTIPLIES = {"mul", "madd", "msub", "mneg", "smull", "umull", "smaddl", "umaddl", "smsubl", "umsubl",
                     "smulh", "umulh", "smnegl", "umnegl"}
SIMD_MULTIPLIES = {"mul", "mla", "mls", "pmul", "sqdmulh", "sqrdmulh"}
SIMD_LONG_MULTIPLIES = re.compile(r"^(s|u|sqd)ml[as]l2?$|^(s|u|sqd|p)mull2?$")
DOT_PRODUCTS = {"sdot", "udot", "usdot", "sudot", "smmla", "ummla", "usmmla"}
# F1 only: pairwise and absolute-difference accumulates, all shifts (incl. sxtl/uxtl), saturating narrows, reductions.
SIMD_F1_ONLY = re.compile(r"^[su]adalp$|^[su]abal?2?$|^[su]r?sra$|^(s|u|sq|uq)?r?sh(l|r)(l|n|u|un)?2?$|^sqr?shrun2?$"
                          r"|^[su]xtl2?$|^s[lr]i$|^[su]q?xtu?n2?$|^[su]?addl?v$|^[su](max|min)v$")
LOADS = re.compile(r"^(ld(r|ur|ar|ax|x|ap|nt|p)[a-z]*|prfu?m)$")
STORES = re.compile(r"^(st(r|ur|lr|lx|x|nt|p)[a-z]*|dc)$")  # dc zva zeroes a cache line


def _form(shape: str) -> tuple[int, str]:
    """("2x16b" | "4s" | "q" | "") -> (registers, arrangement or register letter)."""
    found = re.match(r"^(\d+)x(.*)$", shape)
    return (int(found.group(1)), found.group(2)) if found else (1, shape)


def issue(kind: str) -> tuple[str, dict[str, float]]:
    """One counted kind ("fmla.4s") -> (its class, the µops it issues per pipe: B I M L S F0 F1, and F
    for either F0 or F1)."""
    mnemonic, _, shape = kind.partition(".")
    if mnemonic in BRANCHES:  # "b.ne" arrives as mnemonic "b", shape "ne"
        return "branch", {"B": 1}
    regs, form = _form(shape)
    q = form in Q_ARRANGEMENTS or form == "q"
    lane = form in {"b", "h", "s", "d"} and regs >= 1 and re.match(r"^(ld|st)[1-4]r?$", mnemonic) is not None
    if re.match(r"^ld[1-4]r?$", mnemonic):  # vector structure loads: 128 bits per L µop
        loads = 1 if lane or mnemonic.endswith("r") else (regs * (2 if q else 1) + 1) // 2
        shuffles = 1 if lane or mnemonic.endswith("r") else 0 if mnemonic == "ld1" else regs if q else max(1, regs // 2)
        return "load_vector", {"L": loads, **({"F": shuffles} if shuffles else {})}
    if re.match(r"^st[1-4]$", mnemonic):  # 64 bits per S µop
        stores = 1 if lane else regs * (2 if q else 1)
        shuffles = 0 if lane or mnemonic == "st1" else regs if q else max(1, regs // 2)
        return "store_vector", {"S": stores, **({"F": shuffles} if shuffles else {})}
    pair = mnemonic in {"ldp", "ldnp", "ldpsw", "ldxp", "ldaxp", "stp", "stnp", "stxp", "stlxp"}
    if LOADS.match(mnemonic):
        return ("load_q" if q else "load"), {"L": 2 if pair and q else 1}
    if STORES.match(mnemonic):
        stores = (4 if q else 2 if form in {"x", "d"} else 1) if pair else (2 if q else 1)
        return ("store_q" if q else "store"), {"S": stores, **({"I": 1} if q else {})}
    if mnemonic in DOT_PRODUCTS:
        return "simd_int_dot", {"F0": 1}  # ARMv8.2+: an A72 has none (qemu -cpu cortex-a72 would trap)
    if form not in Q_ARRANGEMENTS | D_ARRANGEMENTS | FP_REGISTERS:  # integer registers or no operand
        if mnemonic in {"sdiv", "udiv"}:
            return "int_div", {"M": 1}  # not pipelined on a real core; rare in these kernels
        if mnemonic in SCALAR_MULTIPLIES:
            return "int_mul", {"M": 1}
        if mnemonic in SYSTEM:
            return "other", {}
        if mnemonic in {"umov", "smov"}:  # vector element -> integer register
            return "fp_transfer", {"L": 1, "I": 1}
        if mnemonic == "fmov":
            return "fp_transfer", {"L": 1}
        if mnemonic.startswith("fcvt"):  # FP -> integer register
            return "fp_transfer", {"L": 1, "F": 1}
        return "int_alu", {"I": 1}
    per = 2 if q else 1  # Q-form (128-bit) FP and multiply ops issue two µops
    if mnemonic in {"fmla", "fmls", "fmadd", "fmsub", "fnmadd", "fnmsub"}:
        return "fp_fma", {"F": per}
    if mnemonic in {"fdiv", "fsqrt"}:
        return "fp_div", {"F0": per}  # not pipelined on a real core
    if SIMD_LONG_MULTIPLIES.match(mnemonic):
        return "simd_int_mul_long", {"F0": 1}
    if mnemonic in SIMD_MULTIPLIES:
        return "simd_int_mul", {"F0": per}
    if SIMD_F1_ONLY.match(mnemonic):
        two = q and (mnemonic in {"saba", "uaba"} or mnemonic.endswith("shl") and mnemonic != "shl")
        return "simd_int_accumulate_shift", {"F1": 2 if two else 1}
    pairwise = q and mnemonic in {"faddp", "fmaxp", "fminp", "fmaxnmp", "fminnmp"}
    reduce = re.match(r"^f(max|min)(nm)?v$", mnemonic) is not None
    if mnemonic in {"fcvtl", "fcvtl2", "fcvtn", "fcvtn2", "fcvtxn"} or pairwise or reduce:
        return "fp_other", {"F": 3}
    if mnemonic.startswith("f") or mnemonic in {"scvtf", "ucvtf", "urecpe", "ursqrte"}:
        return "fp_other", {"F": per}
    if mnemonic in {"zip1", "zip2", "uzp1", "uzp2", "tbl", "tbx"}:
        return "simd_permute", {"F": 3 if q else 1}
    return "simd_int_alu", {"F": 1}


def pipe_uops(per_kind: dict[str, float]) -> dict[str, float]:
    totals = dict.fromkeys(("B", "I", "M", "L", "S", "F0", "F1", "F"), 0.0)
    for kind, count in per_kind.items():
        for pipe, uops in issue(kind)[1].items():
            totals[pipe] += count * uops
    return totals


def cycles_bound(per_kind: dict[str, float]) -> tuple[float, str]:
    """The busiest resource: (cycles, its name). F µops go to F0 or F1, whichever is less busy."""
    uops = pipe_uops(per_kind)
    bounds = {"decode": sum(per_kind.values()) / DECODE_WIDTH, "B": uops["B"], "I0/I1": uops["I"] / 2,
              "M": uops["M"], "L": uops["L"], "S": uops["S"], "F0": uops["F0"], "F1": uops["F1"],
              "F0+F1": (uops["F0"] + uops["F1"] + uops["F"]) / 2}
    name = max(bounds, key=bounds.get)
    return bounds[name], name


# ---- results -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class A72Estimate:
    """Per-inference instruction counts and the estimated Cortex-A72 cycles of one model."""

    model: str
    input_shape: tuple[int, ...]
    threads: int
    runs: int  # inferences between the two marks
    instructions: float  # per inference
    counts_by_class: dict[str, float]
    counts_by_kind: dict[str, float]
    pipe_uops: dict[str, float]
    cycles: float
    bottleneck: str
    method: str = METHOD
    qemu_version: str = ""
    cpu: str = QEMU_CPU
    onnxruntime: str = ""
    seconds: float = 0.0  # wall time of the emulated run (qemu with the plugin)
    notes: list[str] = field(default_factory=list)

    def milliseconds(self, clock_ghz: float = 1.5) -> float:
        """Cycles at a clock (a Raspberry Pi 4 runs 1.5 GHz, 1.8 GHz on later boards): an estimate."""
        return self.cycles / (clock_ghz * 1e6)

    def to_dict(self) -> dict:
        return {"model": self.model, "input_shape": list(self.input_shape), "threads": self.threads,
                "runs": self.runs, "instructions_per_inference": self.instructions,
                "counts_by_class": self.counts_by_class, "pipe_uops": self.pipe_uops,
                "estimated_cycles": self.cycles, "bottleneck": self.bottleneck,
                "estimated_ms_at_1_5_ghz": self.milliseconds(1.5), "method": self.method,
                "qemu_version": self.qemu_version, "cpu": self.cpu, "onnxruntime": self.onnxruntime,
                "emulation_seconds": self.seconds, "notes": self.notes,
                "counts_by_kind": dict(sorted(self.counts_by_kind.items(), key=lambda kv: -kv[1]))}


# ---- tools ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _plugin_qemu(path: str | None) -> tuple[str, str] | None:
    """(qemu-aarch64 that can load TCG plugins, its version) or None."""
    if path is None:
        return None
    try:
        helped = subprocess.run([path, "-h"], capture_output=True, text=True, timeout=30).stdout
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"version (\S+)", version)
    if "-plugin" not in helped or not found:
        return None
    return path, found.group(1)


def plugin_qemu() -> tuple[str, str] | None:
    return _plugin_qemu(shutil.which("qemu-aarch64"))


def plugin_dir(version: str) -> Path:
    """Where set-up puts qemu-plugin.h for this qemu and where the compiled plugin is cached."""
    return cache_root() / "qemu-plugins" / f"qemu-{version}"


def plugin_header(version: str) -> Path | None:
    candidates = [plugin_dir(version) / "qemu-plugin.h", Path("/usr/include/qemu-plugin.h"),
                  Path("/usr/include/qemu/qemu-plugin.h")]
    if os.environ.get("EDGEKIT_QEMU_PLUGIN_H"):
        candidates.insert(0, Path(os.environ["EDGEKIT_QEMU_PLUGIN_H"]))
    return next((path for path in candidates if path.is_file()), None)


def a72_estimate_unavailable() -> str | None:
    """Why an estimate cannot run here, as one line with what to install; None when it can."""
    qemu = plugin_qemu()
    if qemu is None:
        return ("qemu-aarch64 with TCG plugin support is not installed (qemu-user-static cannot load plugins): "
                f"apt-get install qemu-user, or {INSTALL_HINT}")
    if not (shutil.which("gcc") or shutil.which("cc")):
        return f"no C compiler to build edgekit's qemu plugin: apt-get install gcc libc6-dev, or {INSTALL_HINT}"
    if plugin_header(qemu[1]) is None:
        return (f"qemu-plugin.h for qemu {qemu[1]} is not in {plugin_dir(qemu[1])} (no Debian binary package "
                f"ships it): run {INSTALL_HINT}")
    versions = host_versions()
    cached = cache_root() / f"arm64-py311-ort{versions['onnxruntime']}-numpy{versions['numpy']}" / "stamp.json"
    if not cached.is_file() and shutil.which("mmdebstrap") is None:
        return f"mmdebstrap is not installed (needed once for the emulated arm64 Python): {INSTALL_HINT}"
    return None


def ensure_plugin() -> Path:
    """The compiled counting plugin for the installed qemu, built on first use (< 1 s)."""
    problem = a72_estimate_unavailable()
    if problem:
        raise EdgekitError(problem)
    _, version = plugin_qemu()
    header = plugin_header(version)
    digest = hashlib.sha256(PLUGIN_SOURCE.read_bytes() + header.read_bytes()).hexdigest()[:16]
    target = plugin_dir(version) / f"insn_classes-{digest}.so"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    compiler = shutil.which("gcc") or shutil.which("cc")
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        built = Path(folder) / target.name
        done = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-I", str(header.parent),
                               "-o", str(built), str(PLUGIN_SOURCE), "-lpthread"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if "error" in line] or done.stderr.splitlines()
            raise EdgekitError(f"cannot compile {PLUGIN_SOURCE.name} against {header}: "
                               f"{(errors[-1] if errors else 'exit code ' + str(done.returncode))[:300]}")
        os.replace(built, target)  # atomic: a concurrent build leaves one complete file
    return target


# ---- running -------------------------------------------------------------------------------------

def read_marks(text: str) -> dict[str, dict[str, int]]:
    """The plugin's output: "mark N" lines, each followed by "kind count" running totals."""
    marks: dict[str, dict[str, int]] = {}
    current: dict[str, int] | None = None
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == "mark":
            current = marks.setdefault(value, {})
        elif current is not None and name:
            current[name] = int(value)
    return marks


def per_inference(marks: dict[str, dict[str, int]], runs: int) -> dict[str, float]:
    if "1" not in marks or "2" not in marks:
        raise EdgekitError(f"the emulated run ended before both marks (got {sorted(marks)}): "
                           "the driver did not finish its inferences")
    first, second = marks["1"], marks["2"]
    return {kind: (count - first.get(kind, 0)) / runs for kind, count in second.items()
            if count > first.get(kind, 0)}


def summarize(per_kind: dict[str, float]) -> tuple[dict[str, float], dict[str, float], float, str]:
    by_class: dict[str, float] = {}
    for kind, count in per_kind.items():
        name = issue(kind)[0]
        by_class[name] = by_class.get(name, 0.0) + count
    cycles, bottleneck = cycles_bound(per_kind)
    return dict(sorted(by_class.items(), key=lambda kv: -kv[1])), pipe_uops(per_kind), cycles, bottleneck


def estimate_a72_cycles(model_path: str | os.PathLike, input_shape: Sequence[int], *, threads: int = 1,
                        images: np.ndarray | None = None, runs: int = DEFAULT_RUNS,
                        timeout_s: float = TIMEOUT_S) -> A72Estimate:
    """Count one model's instructions per inference on an emulated Cortex-A72 and weight them by its
    issue model. ``images``: a preprocessed batch-1 input (N x C x H x W float32; the first is used),
    else a fixed random one of ``input_shape`` (cost of these CNNs does not depend on pixel values).
    With ``threads`` > 1 the counts are the sum over all threads and the cycles are the work of one
    core doing all of it. Raises EdgekitError (one line) when the tools are missing or the model
    fails under emulation."""
    import time

    model = Path(model_path)
    if not model.is_file():
        raise EdgekitError(f"no model file at {model}")
    if runs < 1 or threads < 1:
        raise EdgekitError(f"runs and threads must be >= 1, got runs={runs}, threads={threads}")
    plugin = ensure_plugin()
    qemu, version = plugin_qemu()
    python = ensure_arm64_python()
    if images is not None:
        sample = np.ascontiguousarray(np.asarray(images)[:1], dtype=np.float32)
    else:
        sample = np.random.default_rng(0).standard_normal(tuple(input_shape), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="edgekit-a72-") as folder:
        inputs, counts = Path(folder) / "inputs.npy", Path(folder) / "counts.txt"
        np.save(inputs, sample)
        argv, env = python.command(str(DRIVER), str(model.resolve()), str(inputs), "--runs", str(runs),
                                   "--threads", str(threads), timeout_s=timeout_s)
        at = argv.index(python.qemu)
        argv[at:at + 1] = [qemu, "-plugin", f"{plugin},out={counts}"]
        env["OMP_NUM_THREADS"] = str(threads)
        started = time.monotonic()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=folder)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise EdgekitError(describe_failure(f"A72 cost run of {model.name}", done.returncode, done.stderr,
                                                timeout_s))
        per_kind = per_inference(read_marks(counts.read_text() if counts.is_file() else ""), runs)
    by_class, uops, cycles, bottleneck = summarize(per_kind)
    return A72Estimate(model=str(model), input_shape=tuple(sample.shape), threads=threads, runs=runs,
                       instructions=sum(per_kind.values()), counts_by_class=by_class, counts_by_kind=per_kind,
                       pipe_uops=uops, cycles=cycles, bottleneck=bottleneck, qemu_version=version,
                       onnxruntime=host_versions()["onnxruntime"], seconds=seconds)
