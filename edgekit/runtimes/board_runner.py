#!/usr/bin/env python3
"""edgekit's board runner: runs an artifact's ONNX Runtime models where only python3, numpy and
onnxruntime are installed (its sessions open OpenVINO IR too, where openvino is: verify uses them).

Self-contained on purpose: it is copied to boards over SSH, baked into the arm64 image and run under
qemu, so it imports nothing from edgekit and nothing beyond the standard library, numpy and
onnxruntime (Python 3.8+). The local `edgekit bench` uses the same measurement loop (`measure`), so
numbers from a board and from this machine come from one piece of code.

    python3 board_runner.py info
    python3 board_runner.py bench ARTIFACT_DIR [--runs N] [--warmup N] [--threads N]
                                               [--data EVAL.npy] [--json OUT.json]
    python3 board_runner.py measure < job.json      (one model in a fresh process; bench uses it)

bench checks the manifest and the sha256 of every file it will read before running anything. Its
workers run under $EDGEKIT_RUNNER_PYTHON if set, a JSON argv such as ["qemu-aarch64-static", "python3"].

Exit codes: 0 done, 1 a model failed, 2 bad usage or input, 3 numpy/onnxruntime/openvino missing.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import stat
import subprocess
import sys
import time

MISSING_DEPENDENCY = 3
BAD_INPUT = 2
WORKER_TIMEOUT_S = 1800
MANIFEST_MAX_BYTES = 16 * 1024 * 1024  # real manifests are a few kB; this only bounds a hostile one
RUNNER_PYTHON = "EDGEKIT_RUNNER_PYTHON"
SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class RunnerError(Exception):
    """A problem the person running the board can fix; printed as one `error:` line."""

    def __init__(self, message: str, code: int = BAD_INPUT):
        super().__init__(message)
        self.code = code


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise RunnerError(f"{module} is not installed for {sys.executable} on this machine: "
                          f"pip install {module}", MISSING_DEPENDENCY) from None


def _version(module: str):
    """The release of an importable module (openvino's __version__ is a build string); else None."""
    try:
        __import__(module)
        return importlib.metadata.version(module)
    except ImportError:  # PackageNotFoundError is one too
        return None


# ---- host description ---------------------------------------------------------------------------

def _read(path: str, limit: int = 65536) -> str:
    try:
        with open(path) as handle:
            return handle.read(limit)
    except OSError:
        return ""


def host_info() -> dict:
    """What the board is; the caller parses `cpuinfo` (edgekit.targets.isa) for the model and int8 features."""
    release = dict(line.split("=", 1) for line in _read("/etc/os-release").splitlines() if "=" in line)
    return {
        "arch": platform.machine(), "logical_cores": os.cpu_count(),
        "os": release.get("PRETTY_NAME", "").strip('"') or platform.platform(),
        "kernel": platform.release(), "python": platform.python_version(),
        "numpy": _version("numpy"), "onnxruntime": _version("onnxruntime"),
        "openvino": _version("openvino"),
        "cpuinfo": _read("/proc/cpuinfo"),
        "ort_session_config": EXACT_INT8_OPTIONS if int8_saturates_here() else {},
    }


# ---- measurement (shared with edgekit's local bench worker) --------------------------------------

def peak_rss_mb() -> float:
    """Peak resident set of this process only.

    ``getrusage().ru_maxrss`` survives fork+exec on Linux, so a worker started by a parent holding
    torch would report the parent's 1.4 GB. ``VmHWM`` belongs to the address space, which exec
    replaces, so it is this interpreter's own high-water mark.
    """
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0  # kB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # non-Linux fallback


# ONNX Runtime's x86 int8 kernels multiply u8 activations by s8 weights with vpmaddubsw unless the
# CPU has VNNI, and its int16 pair sums saturate: int8 outputs there are not the model's arithmetic
# (a trained kEffNet-B0 fell from 72.5% to 54.6% top-1 on an AVX2-only EPYC; benchmarks/README.md).
# This option makes ORT rewrite the weights to u8 and run exact u8u8 kernels. It is not set on VNNI
# CPUs, where it changes no output and cost 1.05-1.4x in latency (ResNet-18 int8, 160 px, 1 thread;
# benchmarks/x64_exact_int8_cost.py). ORT skips the rewrite for weights within [-64, 64] (7-bit
# weights cannot saturate), so such models run the fast kernels exactly with or without it.
EXACT_INT8_OPTIONS = {"session.x64quantprecision": "1"}

# Which x86 int8 kernels a model asks for: manifest models[i].x86_int8_kernels, a measure job's key.
EXACT_KERNELS = "exact"  # EXACT_INT8_OPTIONS where the CPU lacks VNNI; ORT's defaults (exact there) elsewhere
DEFAULT_KERNELS = "ort-default"  # ORT's defaults everywhere: faster without VNNI, but sums may saturate there
X86_INT8_KERNELS = (EXACT_KERNELS, DEFAULT_KERNELS)


@functools.lru_cache(maxsize=None)  # the CPU does not change
def cpuid_features() -> dict:
    """numpy's reading of CPUID ({"AVX2": True, "AVX512VNNI": False, ...}; {} where unknown). CPUID,
    not /proc/cpuinfo: an emulated CPU answers for itself, while qemu passes the host's file through."""
    _require("numpy")
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):  # numpy 2, numpy 1
        try:
            return dict(importlib.import_module(module).__cpu_features__)
        except (ImportError, AttributeError):
            continue
    return {}


@functools.lru_cache(maxsize=None)  # the CPU does not change; every session asks
def int8_saturates_here() -> bool:
    """True on x86 CPUs without AVX-512 VNNI. AVX-VNNI without AVX-512 (Alder Lake clients), which
    numpy does not report, counts as saturating: exact but slower. Unknown counts as saturating too:
    exact kernels are the safe side."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False  # ARM's int8 kernels widen before they add (see targets/rpi4.toml)
    return not cpuid_features().get("AVX512VNNI", False)


def session_config_here(kernels: str = EXACT_KERNELS) -> dict:
    """The ONNX Runtime session config entries a model that asks for ``kernels`` gets on this CPU."""
    if kernels not in X86_INT8_KERNELS:
        raise RunnerError(f"x86_int8_kernels must be one of {', '.join(X86_INT8_KERNELS)}, got {kernels!r}")
    return dict(EXACT_INT8_OPTIONS) if kernels == EXACT_KERNELS and int8_saturates_here() else {}


def ort_session_options(ort, threads: int, kernels: str = EXACT_KERNELS, *, config: dict | None = None):
    """The session options of every edgekit ONNX Runtime session (edgekit.runtimes.sessions imports this).
    ``config``, when given, replaces this CPU's choice of entries (the build asks for the exact
    option on every x86 host, to prove the int8 model loads where a CPU without VNNI needs it)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    for key, value in (session_config_here(kernels) if config is None else config).items():
        options.add_session_config_entry(key, value)
    return options


def ort_runner(job: dict):
    ort = _require("onnxruntime")
    options = ort_session_options(ort, job["threads"], job.get("x86_int8_kernels", EXACT_KERNELS))
    session = ort.InferenceSession(job["model_path"], options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def compile_openvino(ov, path: str, *, threads: int = 0, precision=None, batch: int = 1):
    """An IR compiled for this CPU at a static batch (edgekit's own OpenVINO sessions are these)."""
    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape({model.input(0): ov.PartialShape([batch, *list(model.input(0).get_partial_shape())[1:]])})
    config = {"PERFORMANCE_HINT": "LATENCY", **({"INFERENCE_NUM_THREADS": threads} if threads else {}),
              **({"INFERENCE_PRECISION_HINT": precision} if precision else {})}
    return core.compile_model(model, "CPU", config)


def openvino_runner(job: dict):
    request = compile_openvino(_require("openvino"), job["model_path"], threads=job["threads"],
                               precision=job.get("inference_precision")).create_infer_request()
    return lambda x: request.infer({0: x})[0].copy()


RUNNERS = {"onnxruntime": ort_runner, "openvino": openvino_runner}


def measure(job: dict, make_runner=ort_runner) -> dict:
    """Load, warm up, time batch-1 runs, read peak memory, then predict the evaluation set if any."""
    np = _require("numpy")
    rss_start = peak_rss_mb()
    started = time.perf_counter()
    run = make_runner(job)
    load_s = time.perf_counter() - started
    # Memory-mapped, and peak RSS is read before the accuracy pass touches it: the evaluation set
    # (500 images at 224 are 300 MB) must not be counted as the model's memory.
    data = np.load(job["data_path"], mmap_mode="r") if job.get("data_path") else None
    if data is not None:
        sample = np.ascontiguousarray(data[:1])
    else:
        # Latency does not depend on pixel values for these CNNs; accuracy is never measured on this.
        sample = np.random.default_rng(0).standard_normal(job["input_shape"], dtype=np.float32)
    for _ in range(int(job["warmup"])):
        run(sample)
    timings = []
    deadline = time.perf_counter() + float(job.get("max_seconds", 1e9))
    for _ in range(int(job["runs"])):
        start = time.perf_counter_ns()
        run(sample)
        timings.append((time.perf_counter_ns() - start) / 1e6)
        if time.perf_counter() > deadline:
            break
    latencies = np.asarray(timings)
    result = {
        "runs": len(timings), "load_s": load_s,
        "latency_ms": {
            "p50": float(np.percentile(latencies, 50)), "p90": float(np.percentile(latencies, 90)),
            "p99": float(np.percentile(latencies, 99)), "mean": float(latencies.mean()),
            "min": float(latencies.min()),
        },
        "throughput_ips": float(1000.0 / latencies.mean()),
        "rss_before_load_mb": rss_start, "peak_rss_mb": peak_rss_mb(),
    }
    if job.get("runtime", "onnxruntime") == "onnxruntime":  # which int8 kernels these numbers are from
        result["ort_session_config"] = session_config_here(job.get("x86_int8_kernels", EXACT_KERNELS))
    if data is not None:
        result["predictions"] = [int(np.asarray(run(np.ascontiguousarray(data[i:i + 1]))).argmax())
                                 for i in range(len(data))]
    return result


def measure_reporting_errors(job: dict, make_runner=ort_runner) -> dict:
    """A failing model becomes an error row in the table, not a crash of the whole bench."""
    try:
        return {"ok": True, **measure(job, make_runner)}
    except RunnerError:
        raise
    except Exception as error:
        one_line = getattr(error, "one_line", None)  # edgekit's own errors already say it in one line
        message = " ".join((one_line() if one_line else str(error)).split())
        return {"ok": False, "error": f"{type(error).__name__}: {message[:400]}"}


def run_worker(job: dict, argv: list) -> dict:
    """One measurement in a fresh interpreter: peak RSS is that model's alone, and a segfault in
    a runtime is reported as a row instead of killing the bench."""
    env = dict(os.environ, OMP_NUM_THREADS=str(job["threads"]))
    try:
        done = subprocess.run(argv, input=json.dumps(job), capture_output=True, text=True,
                              timeout=WORKER_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {WORKER_TIMEOUT_S} s"}
    except OSError as error:  # e.g. an aarch64 interpreter exec'd without qemu: ENOEXEC
        return {"ok": False, "error": f"cannot start the worker {argv[0]}: {error.strerror or error}"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = " ".join(done.stderr.strip().splitlines()[-1:])[:300]
        return {"ok": False, "error": f"worker exited with {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def worker_command() -> list:
    """bench's interpreter for workers: $EDGEKIT_RUNNER_PYTHON, else this one. Under qemu user-mode
    sys.executable is an aarch64 binary the kernel runs only where binfmt_misc has qemu registered,
    so edgekit's emulation names qemu here: every worker starts through it explicitly."""
    return argv_from_environment(RUNNER_PYTHON, '["/usr/bin/python3"]') or [sys.executable]


def argv_from_environment(variable: str, example: str) -> list | None:
    """A command line given as a JSON list of strings in ``variable``; None where it is unset."""
    raw = os.environ.get(variable, "")
    if not raw:
        return None
    try:
        argv = json.loads(raw)
    except ValueError:
        argv = None
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) and a for a in argv)):
        raise RunnerError(f"{variable} must be a JSON list of non-empty strings such as {example}, got {raw[:200]!r}")
    return argv


# ---- commands ------------------------------------------------------------------------------------
# bench checks the artifact before anything runs: it comes from elsewhere, its manifest says which
# files onnxruntime parses, and this script cannot import edgekit.artifact.manifest's checks.

def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())[:200]


def _count(value, least: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _read_manifest(folder: str) -> dict:
    path = os.path.join(folder, "manifest.json")
    if os.path.islink(path):
        raise RunnerError(f"{path} is a symlink; an artifact's manifest.json must be a regular file")
    try:  # O_NOFOLLOW: a symlink swapped in after the check above is refused all the same
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise RunnerError(f"{path} is not a regular file")
            raw = handle.read(MANIFEST_MAX_BYTES + 1)
    except OSError as error:
        raise RunnerError(f"{folder} is not an edgekit artifact (cannot read manifest.json: "
                          f"{error.strerror or error})") from None
    if len(raw) > MANIFEST_MAX_BYTES:
        raise RunnerError(f"{path} is larger than {MANIFEST_MAX_BYTES >> 20} MB; refusing to parse it")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise RunnerError(f"{path} is not valid JSON: {_one_line(error)}") from None
    _check_manifest(manifest)
    return manifest


def _check_manifest(manifest) -> None:
    """The keys and types this script reads, so that a bad manifest is one line, not a KeyError."""
    def require(ok, key: str, expected: str) -> None:
        if not ok:
            raise RunnerError(f"manifest.json: {key} must be {expected}")

    require(isinstance(manifest, dict), "the top level", "a JSON object")
    files = manifest.get("files")
    require(isinstance(files, dict), '"files"', 'an object of file name -> {"sha256": ..., "bytes": ...}')
    for name, record in files.items():
        require(isinstance(record, dict) and SHA256.fullmatch(str(record.get("sha256"))) and
                _count(record.get("bytes"), 0), f"files[{name!r}]", '{"sha256": 64 hex digits, "bytes": size}')
    models = manifest.get("models")
    require(isinstance(models, list), '"models"', "a list of model entries")
    for index, entry in enumerate(models):
        require(isinstance(entry, dict) and all(isinstance(entry.get(key), str) and entry[key]
                                                for key in ("file", "runtime", "precision")),
                f"models[{index}]", 'an object with string "file", "runtime" and "precision"')
        companions = entry.get("companions", [])
        require(isinstance(companions, list) and all(isinstance(c, str) and c for c in companions),
                f"models[{index}].companions", "a list of file names")
        require(entry.get("x86_int8_kernels", EXACT_KERNELS) in X86_INT8_KERNELS,
                f"models[{index}].x86_int8_kernels", f"one of {', '.join(X86_INT8_KERNELS)}")
    sections = {key: manifest.get(key) if isinstance(manifest.get(key), dict) else {}
                for key in ("input", "target", "model")}
    shape = sections["input"].get("shape")
    require(isinstance(shape, list) and shape and all(_count(d) for d in shape), "input.shape",
            "a list of positive integers")
    require(_count(sections["target"].get("threads")), "target.threads", "a positive integer")
    for key in ("model", "target"):
        require(isinstance(sections[key].get("name"), str), f"{key}.name", "a string")


def _verified(folder: str, files: dict, name: str) -> str:
    """The real path of a file the manifest names, once it is proven to be the listed one."""
    if os.path.isabs(name) or ".." in name.split("/"):
        raise RunnerError(f"manifest names {name!r}, a path outside the artifact")
    if name not in files:
        raise RunnerError(f"manifest names {name!r}, which is not listed in its files (no sha256 to check)")
    path, root = os.path.join(folder, name), os.path.realpath(folder)
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):  # its target could be anywhere, and change after the check
            raise RunnerError(f"artifact file {name} is a symlink; only regular files inside the artifact are run")
        if not stat.S_ISREG(info.st_mode):
            raise RunnerError(f"artifact file {name} is not a regular file")
        real = os.path.realpath(path)
        if not real.startswith(root + os.sep):  # through a symlinked folder
            raise RunnerError(f"manifest names {name!r}, which resolves outside the artifact")
        digest = hashlib.sha256()
        with open(real, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise RunnerError(f"artifact file {name} cannot be read: {error.strerror or error}") from None
    if info.st_size != files[name]["bytes"] or digest.hexdigest() != files[name]["sha256"].lower():
        raise RunnerError(f"artifact file {name} does not match its size and sha256 in manifest.json (modified?)")
    return real


def _check_data(np, data_path: str, shape: list) -> None:
    """Evaluation images: float32, N x the model input without its batch dimension."""
    try:
        if not os.path.isfile(data_path):
            raise OSError("no such file")
        data = np.load(data_path, mmap_mode="r", allow_pickle=False)  # maps it: reads the header only
    except Exception as error:
        raise RunnerError(f"--data {data_path} is not a readable .npy file: {_one_line(error)}") from None
    if data.dtype != np.float32 or data.ndim != len(shape) or data.shape[1:] != tuple(shape[1:]) or not len(data):
        found = " x ".join(map(str, data.shape)) or "a scalar"
        raise RunnerError(f"--data {data_path} holds {data.dtype} {found}, expected "
                          f"float32 N x {' x '.join(map(str, shape[1:]))} with N >= 1")


def bench(folder: str, *, runs: int, warmup: int, threads, data_path, json_path=None) -> dict:
    np = _require("numpy")
    _require("onnxruntime")
    manifest = _read_manifest(folder)
    if json_path and os.path.realpath(json_path).startswith(os.path.realpath(folder) + os.sep):
        raise RunnerError(f"--json {json_path} lies inside the artifact; write the report elsewhere")
    threads = threads or manifest["target"]["threads"]
    entries = [e for e in manifest["models"] if e["runtime"] == "onnxruntime"]
    if not entries:
        raise RunnerError(f"{folder} has no ONNX Runtime models (the board runner runs only those)")
    if data_path:
        _check_data(np, data_path, manifest["input"]["shape"])
    interpreter = worker_command()
    # All files of all models are verified before the first one runs. The other runtimes' files are
    # never read here (nor copied to boards), so they are not checked.
    names = [[entry["file"], *entry.get("companions", [])] for entry in entries]
    paths = [[_verified(folder, manifest["files"], name) for name in group] for group in names]
    rows = []
    for index, entry in enumerate(entries):
        _progress(f"measuring {index + 1}/{len(entries)}: {entry['file']}")
        job = {"model_path": paths[index][0], "threads": threads, "runs": runs, "warmup": warmup,
               "input_shape": manifest["input"]["shape"], "data_path": data_path,
               "x86_int8_kernels": entry.get("x86_int8_kernels", EXACT_KERNELS)}
        result = run_worker(job, [*interpreter, os.path.abspath(__file__), "measure"])
        size_mb = sum(manifest["files"][name]["bytes"] for name in names[index]) / 1e6
        rows.append({"file": entry["file"], "runtime": entry["runtime"], "precision": entry["precision"],
                     "size_mb": size_mb, **result})
    skipped = [e["file"] for e in manifest["models"] if e["runtime"] != "onnxruntime"]
    report = {"model": manifest["model"]["name"], "target": manifest["target"]["name"], "host": host_info(),
              "settings": {"threads": threads, "runs": runs, "warmup": warmup, "batch": 1},
              "results": rows, "skipped": skipped}
    if json_path:
        with open(json_path, "w") as handle:
            json.dump(report, handle, indent=2)
    return report


def _progress(message: str) -> None:
    sys.stderr.write(f"board_runner: {message}\n")
    sys.stderr.flush()


def _print_table(report: dict) -> None:
    """Plain text for a terminal on the board (the JSON line on stdout is for machines)."""
    header = (f"{'model file':<24} {'prec':<5} {'MB':>7} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} "
              f"{'img/s':>8} {'RSS MB':>7}")
    lines = [f"{report['model']} for {report['target']} on {report['host']['arch']}, "
             f"batch 1, {report['settings']['threads']} threads", header]
    for row in report["results"]:
        if not row["ok"]:
            lines.append(f"{row['file']:<24} {row['precision']:<5} failed: {row['error']}")
            continue
        latency = row["latency_ms"]
        lines.append(f"{row['file']:<24} {row['precision']:<5} {row['size_mb']:>7.2f} {latency['p50']:>9.3f} "
                     f"{latency['p90']:>9.3f} {latency['p99']:>9.3f} {row['throughput_ips']:>8.1f} "
                     f"{row['peak_rss_mb']:>7.0f}")
    sys.stderr.write("\n".join(lines) + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="board_runner.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="describe this machine (one JSON line)")
    commands.add_parser("measure", help="measure one model; job JSON on stdin")
    bench_parser = commands.add_parser("bench", help="benchmark an artifact's ONNX Runtime models")
    bench_parser.add_argument("artifact")
    bench_parser.add_argument("--runs", type=int, default=200)
    bench_parser.add_argument("--warmup", type=int, default=20)
    bench_parser.add_argument("--threads", type=int)
    bench_parser.add_argument("--data", help="preprocessed evaluation images, float32 N x C x H x W .npy")
    bench_parser.add_argument("--json", help="also write the report here")
    return parser


def _check_counts(*options) -> None:
    for flag, value, least in options:
        if value is not None and value < least:
            raise RunnerError(f"{flag} must be >= {least}, got {value}")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "info":
            print(json.dumps(host_info()))
        elif args.command == "measure":
            print("\n" + json.dumps(measure_reporting_errors(json.loads(sys.stdin.read()))))
        else:
            _check_counts(("--runs", args.runs, 1), ("--warmup", args.warmup, 0), ("--threads", args.threads, 1))
            report = bench(args.artifact, runs=args.runs, warmup=args.warmup, threads=args.threads,
                           data_path=args.data, json_path=args.json)
            _print_table(report)
            print(json.dumps(report))
            return 0 if all(row["ok"] for row in report["results"]) else 1
    except RunnerError as error:
        sys.stderr.write(f"error: {error}\n")
        return error.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
