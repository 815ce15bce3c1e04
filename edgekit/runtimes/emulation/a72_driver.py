#!/usr/bin/env python3
"""Runs one ONNX model for the Cortex-A72 cost estimate, inside the emulated aarch64 Python.

    python3 a72_driver.py MODEL.onnx INPUTS.npy --runs K [--threads N]

Like board_runner.py (whose session options it uses) it imports nothing from edgekit: it runs under
qemu with only numpy and onnxruntime. It creates the session, runs one inference (lazy set-up such
as weight packing happens there), marks, runs K more and marks again. A mark is a failing
lseek(-1, MARK_TAG | n) that the counting plugin (insn_classes.c) sees; it has no other effect.
So per-inference counts are (mark 2 - mark 1) / K, without interpreter start-up, imports, session
creation or the first run.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # board_runner.py

from board_runner import RunnerError, _require, ort_session_options  # noqa: E402

MARK_TAG = 0x5EED0000 << 32  # the plugin's MARK_TAG, as the upper half of the lseek offset


def mark(number: int) -> None:
    try:
        os.lseek(-1, MARK_TAG | number, os.SEEK_SET)
    except OSError:
        pass  # EBADF, as intended


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="a72_driver.py")
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        np = _require("numpy")
        ort = _require("onnxruntime")
        options = ort_session_options(ort, args.threads)
        # Idle pool threads would spin (and be counted) between operators; a board's would too, but
        # that is waiting, not work.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: np.ascontiguousarray(np.load(args.inputs, allow_pickle=False))}
        session.run(None, feed)
        mark(1)
        for _ in range(args.runs):
            session.run(None, feed)
        mark(2)
    except RunnerError as error:
        sys.stderr.write(f"error: {error}\n")
        return error.code
    print(f"done {args.runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
