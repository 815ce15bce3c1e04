#!/usr/bin/env python3
"""edgekit's board runner: runs an artifact's ONNX Runtime models where only python3, numpy and
onnxruntime are installed.

Self-contained on purpose: it is copied to boards over SSH, baked into the arm64 image and run under
qemu, so it imports nothing from edgekit and nothing beyond the standard library, numpy and
onnxruntime (Python 3.8+). The local `edgekit bench` uses the same measurement loop (`measure`), so
numbers from a board and from this machine come from one piece of code.

    python3 board_runner.py info
    python3 board_runner.py infer MODEL.onnx INPUTS.npy OUTPUTS.npy [--threads N]
    python3 board_runner.py bench ARTIFACT_DIR [--runs N] [--warmup N] [--threads N]
                                               [--data EVAL.npy] [--json OUT.json]
    python3 board_runner.py measure < job.json      (one model in a fresh process; bench uses it)

Exit codes: 0 done, 1 a model failed, 2 bad usage or input, 3 numpy/onnxruntime missing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

MISSING_DEPENDENCY = 3
BAD_INPUT = 2
WORKER_TIMEOUT_S = 1800


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
    try:
        return __import__(module).__version__
    except ImportError:
        return None


# ---- host description ---------------------------------------------------------------------------

def _read(path: str, limit: int = 65536) -> str:
    try:
        with open(path) as handle:
            return handle.read(limit)
    except OSError:
        return ""


def host_info() -> dict:
    """What the board is; the caller parses `cpuinfo` (edgekit.isa) for the model and int8 features."""
    release = dict(line.split("=", 1) for line in _read("/etc/os-release").splitlines() if "=" in line)
    return {
        "arch": platform.machine(), "logical_cores": os.cpu_count(),
        "os": release.get("PRETTY_NAME", "").strip('"') or platform.platform(),
        "kernel": platform.release(), "python": platform.python_version(),
        "numpy": _version("numpy"), "onnxruntime": _version("onnxruntime"),
        "cpuinfo": _read("/proc/cpuinfo"),
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


def ort_runner(job: dict):
    # The same session options as edgekit.runtimes.ort_session, which this script cannot import.
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(job["threads"])
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(job["model_path"], options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


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
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = " ".join(done.stderr.strip().splitlines()[-1:])[:300]
        return {"ok": False, "error": f"worker exited with {done.returncode}: {tail}"}
    return json.loads(lines[-1])


# ---- commands ------------------------------------------------------------------------------------

def _inside(folder: str, name: str) -> str:
    """A manifest names files relative to its folder; refuse names that would escape it."""
    path = os.path.realpath(os.path.join(folder, name))
    if os.path.isabs(name) or not path.startswith(os.path.realpath(folder) + os.sep):
        raise RunnerError(f"manifest names a file outside the artifact: {name!r}")
    return path


def bench(folder: str, *, runs: int, warmup: int, threads, data_path, json_path=None) -> dict:
    _require("numpy")
    _require("onnxruntime")
    manifest_path = os.path.join(folder, "manifest.json")
    try:
        with open(manifest_path) as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as error:
        raise RunnerError(f"{folder} is not an edgekit artifact (cannot read manifest.json: {error})") from None
    threads = int(threads or manifest["target"]["threads"])
    entries = [e for e in manifest["models"] if e["runtime"] == "onnxruntime"]
    if not entries:
        raise RunnerError(f"{folder} has no ONNX Runtime models (the board runner runs only those)")
    rows = []
    for index, entry in enumerate(entries, 1):
        _progress(f"measuring {index}/{len(entries)}: {entry['file']}")
        files = [entry["file"], *entry.get("companions", [])]
        job = {"model_path": _inside(folder, entry["file"]), "threads": threads, "runs": runs,
               "warmup": warmup, "input_shape": manifest["input"]["shape"], "data_path": data_path}
        result = run_worker(job, [sys.executable, os.path.abspath(__file__), "measure"])
        size_mb = sum(os.path.getsize(_inside(folder, f)) for f in files) / 1e6
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


def infer(model: str, inputs: str, outputs: str, threads: int) -> None:
    np = _require("numpy")
    run = ort_runner({"model_path": model, "threads": threads})
    images = np.load(inputs)
    results = [np.asarray(run(np.ascontiguousarray(images[i:i + 1])), dtype=np.float32) for i in range(len(images))]
    np.save(outputs, np.concatenate(results))


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
    infer_parser = commands.add_parser("infer", help="run a model on every sample of an .npy file")
    for name in ("model", "inputs", "outputs"):
        infer_parser.add_argument(name)
    infer_parser.add_argument("--threads", type=int, default=0)
    bench_parser = commands.add_parser("bench", help="benchmark an artifact's ONNX Runtime models")
    bench_parser.add_argument("artifact")
    bench_parser.add_argument("--runs", type=int, default=200)
    bench_parser.add_argument("--warmup", type=int, default=20)
    bench_parser.add_argument("--threads", type=int)
    bench_parser.add_argument("--data", help="preprocessed evaluation images, float32 N x C x H x W .npy")
    bench_parser.add_argument("--json", help="also write the report here")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "info":
            print(json.dumps(host_info()))
        elif args.command == "measure":
            print("\n" + json.dumps(measure_reporting_errors(json.loads(sys.stdin.read()))))
        elif args.command == "infer":
            infer(args.model, args.inputs, args.outputs, args.threads)
        else:
            if args.runs < 1 or args.warmup < 0:
                raise RunnerError(f"--runs must be >= 1 and --warmup >= 0, got {args.runs} and {args.warmup}")
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
