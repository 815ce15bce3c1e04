"""PyTorch -> ONNX, and the parity check of an ONNX model against the PyTorch module.

Exporter choice (deliberate): the TorchScript-based exporter at opset 17 by default.
- Every op of these CNNs maps 1:1 at opset 17, and opset 17 runs on ONNX Runtime >= 1.14, which
  matters on boards whose ORT lags behind; the torch.export-based exporter forces opset >= 18.
- It exports mobilenet_v2 in ~0.4 s against ~6.5 s, and onnxsim cleans the extra nodes it emits.
``exporter="dynamo"`` selects the torch.export-based exporter (opset 18, needs onnxscript).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from edgekit.artifact.records import ExportRecord, LogitComparison
from edgekit.core.errors import EdgekitError
from edgekit.runtimes.compare import compare_logits
from edgekit.runtimes.sessions import ort_logits

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
EXPORTERS = {"legacy": 17, "dynamo": 18}  # the default opset of each
# What each can write: from 13 (the first opset whose QuantizeLinear takes per-channel scales) to the
# maximum of torch 2.14's exporters (torch.onnx._constants: TorchScript 20, dynamo 23; dynamo starts at 18).
OPSETS = {"legacy": range(13, 21), "dynamo": range(18, 24)}


def export_onnx(model, sample: np.ndarray, path: Path, *, exporter: str = "legacy", opset: int | None = None) -> ExportRecord:
    """Write ``model`` (eval mode) to ``path`` with a dynamic batch axis; return what was done."""
    import torch

    if exporter not in EXPORTERS:
        raise EdgekitError(f"unknown exporter {exporter!r}; choose one of {', '.join(EXPORTERS)}")
    opset = opset or EXPORTERS[exporter]
    model = model.eval()
    example = torch.from_numpy(sample[:1])
    try:
        with torch.no_grad():
            model(example)
    except RuntimeError as error:
        raise EdgekitError(
            f"the model cannot run on input of shape {tuple(example.shape)}; check --input-size / --in-channels"
        ) from error
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice, not actionable here
            if exporter == "legacy":
                torch.onnx.export(
                    model, (example,), str(path), dynamo=False, opset_version=opset,
                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                )
            else:
                batch = torch.export.Dim("batch", min=1, max=4096)
                torch.onnx.export(
                    model, (example,), str(path), dynamo=True, opset_version=opset, external_data=False,
                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_shapes=({0: batch},), verbose=False,
                )
    except Exception as error:  # exporters raise many unrelated types for unsupported ops
        raise EdgekitError(f"ONNX export with the {exporter} exporter failed (unsupported op or pattern)") from error
    return ExportRecord(exporter=exporter, opset=opset, torch=torch.__version__, dynamic_axes={"0": "batch"})


def torch_logits(model, images: np.ndarray, batch_size: int = 4) -> np.ndarray:
    """Small batches: the parity pass must not set the build's peak memory (eager PyTorch holds a
    batch's activations; 16 images at 224 px through MobileNetV2 peaked above calibration)."""
    import torch

    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            outputs.append(model(torch.from_numpy(images[start:start + batch_size])).numpy())
    return np.concatenate(outputs)


def check_parity(model, onnx_path: Path, images: np.ndarray, *, tolerance: float, input_source: str) -> LogitComparison:
    """ORT fp32 vs PyTorch on the same inputs; raises when the normalised max difference > tolerance."""
    reference = torch_logits(model.eval(), images)
    candidate = ort_logits(onnx_path, images)
    measured = compare_logits(reference, candidate, reference_name="the PyTorch model",
                              candidate_name=f"the exported {onnx_path.name} in ONNX Runtime")
    result = LogitComparison.of(measured, tolerance=tolerance, inputs=input_source,
                                passed=measured["max_normalised_diff"] <= tolerance)
    if not result.passed:
        raise EdgekitError(
            f"ONNX parity check failed: max |ORT - PyTorch| / max |logit| = {result.max_normalised_diff:.2e} "
            f"> tolerance {tolerance:.0e} ({onnx_path.name}); very deep networks may need a larger --parity-tol"
        )
    return result
