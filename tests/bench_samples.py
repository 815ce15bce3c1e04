"""Finished bench reports as `edgekit.benchmark.run` returns them, for the presenters' tests (no model runs)."""

from __future__ import annotations


def _row(file, runtime, precision, p50, size_mb, top1=None, agreement=None, **extra) -> dict:
    row = {"file": file, "runtime": runtime, "precision": precision, "size_mb": size_mb, "ok": True,
           "latency_ms": {"p50": p50, "p90": p50 * 1.1, "p99": p50 * 1.3, "mean": p50 * 1.05},
           "throughput_ips": 1000 / p50, "peak_rss_mb": 80.0, **extra}
    if top1 is not None:
        row["top1"] = top1
    if agreement is not None:
        row["agreement_with_fp32"] = agreement
        row["reference"] = "pytorch model_fp32.pt"
    return row


def sample_report(*, accuracy: bool = True, plan: bool = True, failed: bool = False, board: str | None = None) -> dict:
    """Five models, two of them nearly on top of each other (the label placement's hard case)."""
    acc = (lambda top1, agree: {"top1": top1, "agreement": agree}) if accuracy else (lambda *_: {})
    rows = [
        _row("model_fp32.pt", "pytorch", "fp32", 0.412, 0.44, **acc(0.9721, 1.0)),
        _row("model_fp32.onnx", "onnxruntime", "fp32", 0.061, 0.43, **acc(0.9721, 1.0)),
        _row("model_int8.onnx", "onnxruntime", "int8", 0.058, 0.13, **acc(0.9694, 0.9916)),
        _row("model_fp32.xml", "openvino", "fp32", 0.066, 0.43, **acc(0.9721, 1.0)),
        _row("model_int8.xml", "openvino", "int8", 0.052, 0.14, **acc(0.9666, 0.9889)),
    ]
    if failed:
        rows.append({"file": "model_int8.onnx", "runtime": "pytorch", "precision": "int8", "size_mb": 0.13,
                     "ok": False, "error": "RuntimeError: no kernel | for QLinearConv\nsecond line"})
    chosen = {"name": "moving-average", "precision": "int8", "settings": {"calibration": "minmax", "moving_average": True},
              "status": "tried", "accuracy": 96.94, "drop": 0.27, "p50_ms": 0.058, "size_bytes": 130_000,
              "seconds": 4.2, "within_budget": True}
    recommendation = {"model": "model_int8.onnx", "reason": "int8 agrees with fp32 on 99.2% and is 1.05x faster",
                      "plan": {"chosen": "moving-average", "reason": "the fastest plan within 1 point", "objective": "latency",
                               "max_drop": 1.0, "metric": "top-1 accuracy on --val", "baseline_accuracy": 97.21,
                               "candidates": 5, "candidate": chosen} if plan else None}
    return {
        "schema": "edgekit.bench/1", "artifact": "build/small_cnn-cpu", "model": "small_cnn", "target": "cpu",
        "created": "2026-12-01T10:00:00+00:00",
        "host": {"cpu": "Intel(R) Xeon(R) Platinum 8488C", "arch": "x86_64", "logical_cores": 2,
                 "os": "Ubuntu 24.04 LTS", "kernel": "6.8.0", "python": "3.11.7", "numpy": "2.4.6",
                 "onnxruntime": "1.31.1", "board": board, "int8_features": ["avx512_vnni", "amx_int8"],
                 "int8_verdict": "int8 pays off here"},
        "versions": {"edgekit": "0.1.0", "onnxruntime": "1.31.1", "openvino": "2026.4.1", "torch": "2.14.1",
                     "python": "3.11.7"},
        "settings": {"threads": 2, "runs": 200, "warmup": 20, "batch": 1, "eval_images": 359 if accuracy else 0,
                     "data": "digits/val" if accuracy else None},
        "recommendation": recommendation,
        "results": rows,
    }
