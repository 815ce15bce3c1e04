"""One measurement in a fresh process: ``python -m edgekit.benchmark.worker < job.json``.

Each (model file, runtime) pair runs in its own process so peak RSS is that runtime's alone and
one runtime's thread pools or allocator state cannot slow another. This module imports only the
runtime it measures, through that runtime's backend (edgekit.backends; torch is never imported for
ONNX Runtime runs). The measurement loop itself is the board runner's, so local and on-board numbers come from the same code.
"""

from __future__ import annotations

import json
import sys

from edgekit.backends import backend_class
from edgekit.runtimes.board_runner import measure_reporting_errors


def _runner(job: dict):
    runtime, path, threads = job["runtime"], job["model_path"], int(job["threads"])
    if runtime == "pytorch":  # the reference the artifact was built from, not a deployment runtime
        return _pytorch_runner(path, threads, job)
    return backend_class(runtime).runner(path, threads, job)  # an unknown runtime: that row's error


def _pytorch_runner(path: str, threads: int, job: dict):
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


def main() -> None:
    result = measure_reporting_errors(json.loads(sys.stdin.read()), _runner)
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
