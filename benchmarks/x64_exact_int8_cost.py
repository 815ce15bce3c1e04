"""What ONNX Runtime's exact int8 option (session.x64quantprecision=1) costs on this x86 host.

edgekit sets it only where the CPU has no AVX-512 VNNI (edgekit/runtimes/board_runner.py). This measures,
on this host, an int8 ResNet-18 (random weights: latency and bit-equality do not depend on them)
with and without the option, interleaved run by run so both see the same machine load, and says
whether the outputs differ. Without VNNI the option is what makes the outputs exact; with VNNI the
outputs should be identical and the ratio is the price of turning it on everywhere.

    PYTHONPATH=. .venv/bin/python benchmarks/x64_exact_int8_cost.py [--runs 100] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def build_int8_resnet18(folder: Path, size: int) -> Path:
    import torch
    import torchvision
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    torch.manual_seed(0)
    fp32 = folder / "resnet18.onnx"
    torch.onnx.export(torchvision.models.resnet18().eval(), torch.randn(1, 3, size, size), str(fp32),
                      input_names=["input"], opset_version=17, dynamo=False)
    rng = np.random.default_rng(0)

    class Images(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input": rng.standard_normal((1, 3, size, size), dtype=np.float32)}
                                 for _ in range(8)])

        def get_next(self):
            return next(self.batches, None)

    int8 = folder / "resnet18_int8.onnx"
    quantize_static(str(fp32), str(int8), Images(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return int8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args()
    import onnxruntime as ort

    from edgekit.runtimes.board_runner import EXACT_INT8_OPTIONS, int8_saturates_here
    from edgekit.targets.isa import probe_local

    with tempfile.TemporaryDirectory() as tmp:
        model = build_int8_resnet18(Path(tmp), args.size)
        sessions = {}
        for name, config in (("default", {}), ("exact", EXACT_INT8_OPTIONS)):
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            for key, value in config.items():
                options.add_session_config_entry(key, value)
            sessions[name] = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(1).standard_normal((1, 3, args.size, args.size), dtype=np.float32)
        outputs = {name: s.run(None, {"input": x})[0] for name, s in sessions.items()}
        times = {name: [] for name in sessions}
        for _ in range(args.runs):
            for name, session in sessions.items():
                started = time.perf_counter()
                session.run(None, {"input": x})
                times[name].append(time.perf_counter() - started)
    p50 = {name: float(np.median(t)) * 1e3 for name, t in times.items()}
    isa = probe_local()
    report = {"cpu": isa.model_name, "arch": platform.machine(), "int8_features": isa.int8_features,
              "edgekit_sets_exact_option_here": int8_saturates_here(), "model": f"resnet18 int8 QDQ at {args.size} px",
              "threads": args.threads, "runs": args.runs, "p50_ms": p50,
              "exact_over_default_latency": p50["exact"] / p50["default"],
              "max_abs_output_diff": float(np.abs(outputs["exact"] - outputs["default"]).max())}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
