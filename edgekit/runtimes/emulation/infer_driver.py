#!/usr/bin/env python3
"""Runs one model on every sample of an .npy file, for `edgekit verify` (in the emulated aarch64 Python).

    python3 infer_driver.py MODEL INPUTS.npy OUTPUTS.npy [--threads N] [--runtime onnxruntime|openvino]
                            [--precision f32]

Like a72_driver.py it imports nothing from edgekit: it opens the model with board_runner.py's
sessions (those edgekit's bench and boards use), under qemu with only numpy and the runtime. Batch 1,
as the runner measures: a batch changes GEMM blocking and so fp32 rounding.
Exit codes: 0 done, 1 the runtime refused or mis-ran the model, 2 bad input, 3 a module missing.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # board_runner.py

from board_runner import RUNNERS, RunnerError, _one_line, _require  # noqa: E402

MODEL_FAILED = 1


def infer(model: str, inputs: str, outputs: str, *, threads: int, runtime: str, precision: str | None) -> None:
    np = _require("numpy")
    for what, path in (("model", model), ("inputs", inputs), ("outputs folder", os.path.dirname(outputs) or ".")):
        if not os.path.exists(path):
            raise RunnerError(f"infer: {what} {path} does not exist")
    try:
        images = np.load(inputs, allow_pickle=False)
    except Exception as error:
        raise RunnerError(f"infer: inputs {inputs} is not a readable .npy file: {_one_line(error)}") from None
    try:
        run = RUNNERS[runtime]({"model_path": model, "threads": threads, "inference_precision": precision})
    except RunnerError:
        raise
    except Exception as error:  # the runtime refuses the model on this CPU: say which, in one line
        raise RunnerError(f"infer: {runtime} cannot load {os.path.basename(model)} here: {_one_line(error)}",
                          MODEL_FAILED) from None
    results = [np.asarray(run(np.ascontiguousarray(images[i:i + 1])), dtype=np.float32) for i in range(len(images))]
    for result in results:  # seen: OpenVINO's int8 IR on an emulated Cortex-A72 returns 0 rows, and no error
        if result.ndim == 0 or result.shape[0] != 1:
            raise RunnerError(f"infer: {runtime} returned output of shape {result.shape} for one input "
                              f"with {os.path.basename(model)}", MODEL_FAILED)
    np.save(outputs, np.concatenate(results))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="infer_driver.py")
    for name in ("model", "inputs", "outputs"):
        parser.add_argument(name)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--runtime", choices=sorted(RUNNERS), default="onnxruntime")
    parser.add_argument("--precision", help="OpenVINO's INFERENCE_PRECISION_HINT, e.g. f32")
    args = parser.parse_args(argv)
    try:
        if args.threads < 0:
            raise RunnerError(f"--threads must be >= 0, got {args.threads}")  # 0: the runtime's default
        infer(args.model, args.inputs, args.outputs, threads=args.threads, runtime=args.runtime,
              precision=args.precision)
    except RunnerError as error:
        sys.stderr.write(f"error: {error}\n")
        return error.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
