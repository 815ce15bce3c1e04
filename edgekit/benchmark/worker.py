"""One measurement in a fresh process: ``python -m edgekit.benchmark.worker < job.json``.

Each (model file, runtime) pair runs in its own process so peak RSS is that runtime's alone and
one runtime's thread pools or allocator state cannot slow another. This module imports only the
runtime it measures (torch is never imported for ONNX Runtime runs). The measurement loop itself is
the board runner's, so local and on-board numbers come from the same code.
"""

from __future__ import annotations

import json
import sys

from edgekit.runtimes.board_runner import measure_reporting_errors
from edgekit.runtimes.sessions import openvino_compiled, ort_session


def _runner(job: dict):
    runtime, path, threads = job["runtime"], job["model_path"], int(job["threads"])
    if runtime == "onnxruntime":
        session = ort_session(path, threads=threads, kernels=job.get("x86_int8_kernels", "exact"))
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    if runtime == "openvino":
        request = openvino_compiled(path, threads=threads, precision=job.get("inference_precision")).create_infer_request()
        return lambda x: request.infer({0: x})[0]
    if runtime == "pytorch":
        import torch

        from edgekit.models import ModelConfig, module_from_checkpoint, read_checkpoint

        torch.set_num_threads(threads)
        checkpoint = read_checkpoint(path)
        config = checkpoint.config if checkpoint.config is not None else ModelConfig.from_dict(job["model_config"])
        model = module_from_checkpoint(checkpoint, config=config)

        def run(x):
            with torch.inference_mode():
                return model(torch.from_numpy(x)).numpy()

        return run
    raise ValueError(f"unknown runtime {runtime!r}")


def main() -> None:
    result = measure_reporting_errors(json.loads(sys.stdin.read()), _runner)
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
