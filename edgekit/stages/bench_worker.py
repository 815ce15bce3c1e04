"""One measurement in a fresh process: ``python -m edgekit.stages.bench_worker < job.json``.

Each (model file, runtime) pair runs in its own process so peak RSS is that runtime's alone and
one runtime's thread pools or allocator state cannot slow another. This module imports only the
runtime it measures (torch is never imported for ONNX Runtime runs).
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np


def _peak_rss_mb() -> float:
    """Peak resident set of this process only.

    ``getrusage().ru_maxrss`` survives fork+exec on Linux, so a worker started by a parent holding
    torch would report the parent's 1.4 GB. ``VmHWM`` belongs to the address space, which exec
    replaces, so it is this interpreter's own high-water mark.
    """
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # non-Linux fallback


def _runner(job: dict):
    runtime, path, threads = job["runtime"], job["model_path"], int(job["threads"])
    if runtime == "onnxruntime":
        from edgekit.runtimes import ort_session

        session = ort_session(path, threads=threads)
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    if runtime == "openvino":
        from edgekit.runtimes import openvino_compiled

        request = openvino_compiled(path, threads=threads, precision=job.get("inference_precision")).create_infer_request()
        return lambda x: request.infer({0: x})[0]
    if runtime == "pytorch":
        import torch

        from edgekit.models import ModelConfig, build_model, load_weights
        from edgekit.models.weights import read_checkpoint

        torch.set_num_threads(threads)
        checkpoint = read_checkpoint(path)
        config = checkpoint.config if checkpoint.config is not None else ModelConfig.from_dict(job["model_config"])
        model = build_model(config, pruned_shapes=checkpoint.pruned_shapes).eval()
        load_weights(model, checkpoint.state_dict, source=str(path))

        def run(x):
            with torch.inference_mode():
                return model(torch.from_numpy(x)).numpy()

        return run
    raise ValueError(f"unknown runtime {runtime!r}")


def measure(job: dict) -> dict:
    rss_start = _peak_rss_mb()
    started = time.perf_counter()
    run = _runner(job)
    load_s = time.perf_counter() - started
    shape = job["input_shape"]
    # Memory-mapped, and peak RSS is read before the accuracy pass touches it: the evaluation set
    # (500 images at 224 are 300 MB) must not be counted as the model's memory.
    data = np.load(job["data_path"], mmap_mode="r") if job.get("data_path") else None
    if data is not None:
        sample = np.ascontiguousarray(data[:1])
    else:
        # Latency does not depend on pixel values for these CNNs; accuracy is never measured on this.
        sample = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
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
        "runs": len(timings),
        "load_s": load_s,
        "latency_ms": {
            "p50": float(np.percentile(latencies, 50)), "p90": float(np.percentile(latencies, 90)),
            "p99": float(np.percentile(latencies, 99)), "mean": float(latencies.mean()),
            "min": float(latencies.min()),
        },
        "throughput_ips": float(1000.0 / latencies.mean()),
        "rss_before_load_mb": rss_start,
        "peak_rss_mb": _peak_rss_mb(),
    }
    if data is not None:
        result["predictions"] = [int(np.asarray(run(np.ascontiguousarray(data[i:i + 1]))).argmax())
                                 for i in range(len(data))]
    return result


def main() -> None:
    job = json.loads(sys.stdin.read())
    try:
        result = {"ok": True, **measure(job)}
    except Exception as error:  # report, don't crash: the parent prints it in the table
        message = " ".join(str(getattr(error, "one_line", lambda: error)()).split())
        result = {"ok": False, "error": f"{type(error).__name__}: {message[:400]}"}
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
