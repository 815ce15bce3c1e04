#!/usr/bin/env python3
"""Runs one .tflite with LiteRT for the Cortex-A72 cost estimate, inside the emulated aarch64 Python.

    python3 litert_a72_driver.py MODEL.tflite INPUTS.npy --runs K [--threads N] [--builtin]

The LiteRT twin of edgekit/runtimes/emulation/a72_driver.py: only numpy and ai_edge_litert. It creates
the interpreter (XNNPACK delegate by default, as LiteRT does; --builtin uses LiteRT's own kernels
without default delegates), quantizes the float input if the model takes int8, runs one inference
(weight packing happens there), marks, runs K more and marks again (the plugin's failing lseek).
"""

from __future__ import annotations

import argparse
import os
import sys

MARK_TAG = 0x5EED0000 << 32


def mark(number: int) -> None:
    try:
        os.lseek(-1, MARK_TAG | number, os.SEEK_SET)
    except OSError:
        pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="litert_a72_driver.py")
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--builtin", action="store_true")
    args = parser.parse_args(argv)
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if args.builtin else OpResolverType.AUTO
    interpreter = Interpreter(model_path=args.model, num_threads=args.threads, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    image = np.load(args.inputs, allow_pickle=False)
    if tuple(detail["shape"]) != image.shape:
        image = image.transpose(0, 2, 3, 1)  # NCHW -> NHWC
    if detail["dtype"] != np.float32:
        scale, zero = detail["quantization"]
        info = np.iinfo(detail["dtype"])
        image = np.clip(np.round(image / scale) + zero, info.min, info.max)
    interpreter.set_tensor(detail["index"], np.ascontiguousarray(image.astype(detail["dtype"])))
    interpreter.invoke()
    mark(1)
    for _ in range(args.runs):
        interpreter.invoke()
    mark(2)
    output = interpreter.get_output_details()[0]
    values = interpreter.get_tensor(output["index"]).astype(np.float32)
    if output["dtype"] != np.float32:
        scale, zero = output["quantization"]
        values = (values - zero) * scale
    print("out " + " ".join(f"{v:.6g}" for v in values.reshape(-1)[:10]))
    print(f"done {args.runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
