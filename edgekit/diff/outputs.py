"""At the output, across runtimes: every way this host can run the artifact's network, on the same images.

PyTorch (the checkpoint), ONNX Runtime fp32 and int8, OpenVINO fp32 (the IR, else the fp32 ONNX
converted in memory) and int8 (the IR, and the ONNX Runtime int8 QDQ model read by OpenVINO),
each compared with the fp32 reference (PyTorch when it runs, else ONNX Runtime fp32). A runtime
that is missing or fails becomes a row saying why: one broken runtime must not hide the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.artifact.manifest import ArtifactManifest
from edgekit.diff.report import RuntimeDiff
from edgekit.runtimes.compare import compare_logits

Runner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _Candidate:
    runtime: str
    precision: str
    model: str
    load: Callable[[], Runner]


def _torch_runner(path: Path, manifest: ArtifactManifest, threads: int) -> Runner:
    import torch

    from edgekit.models import module_from_checkpoint, read_checkpoint

    torch.set_num_threads(threads)
    checkpoint = read_checkpoint(path)
    module = module_from_checkpoint(checkpoint, config=checkpoint.config or manifest.model.config)

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(batch)).numpy()

    return run


def _ort_runner(path: Path, threads: int, kernels: str | None = None) -> Runner:
    """``kernels``: the x86 int8 kernels the artifact's entry asks for (its plan was judged with them)."""
    from edgekit.runtimes.sessions import ort_session

    session = ort_session(path, threads=threads, kernels=kernels or "exact")
    name = session.get_inputs()[0].name
    static = session.get_inputs()[0].shape[0]
    if isinstance(static, int):  # a fixed batch: feed one image at a time
        return lambda batch: np.concatenate([session.run(None, {name: batch[i:i + 1]})[0] for i in range(len(batch))])
    return lambda batch: session.run(None, {name: batch})[0]


def _openvino_runner(path: Path, threads: int, *, convert: bool = False) -> Runner:
    """Batch 1, f32 inference precision pinned (AMX CPUs would otherwise silently run bf16)."""
    import openvino as ov

    core = ov.Core()
    model = ov.convert_model(str(path)) if convert else core.read_model(str(path))
    shape = list(model.input(0).get_partial_shape())
    shape[0] = 1
    model.reshape({model.input(0): ov.PartialShape(shape)})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()
    return lambda batch: np.concatenate([request.infer({0: batch[i:i + 1]})[0].copy() for i in range(len(batch))])


def candidates(manifest: ArtifactManifest, copies: dict[str, Path], threads: int) -> list[_Candidate]:
    """What to run, in table order; ``copies`` maps each model file to its verified copy."""
    found: list[_Candidate] = []
    for entry in manifest.models_for("pytorch"):
        found.append(_Candidate("pytorch", entry.precision, entry.file,
                                lambda p=copies[entry.file]: _torch_runner(p, manifest, threads)))
    ort = manifest.models_for("onnxruntime")
    for entry in sorted(ort, key=lambda e: e.precision != "fp32"):
        found.append(_Candidate("onnxruntime", entry.precision, entry.file,
                                lambda p=copies[entry.file], k=entry.x86_int8_kernels: _ort_runner(p, threads, k)))
    openvino = manifest.models_for("openvino")
    if not any(e.precision == "fp32" for e in openvino):
        for entry in (e for e in ort if e.precision == "fp32"):
            found.append(_Candidate("openvino", "fp32", f"{entry.file} (converted in memory)",
                                    lambda p=copies[entry.file]: _openvino_runner(p, threads, convert=True)))
    for entry in sorted(openvino, key=lambda e: e.precision != "fp32"):
        found.append(_Candidate("openvino", entry.precision, entry.file,
                                lambda p=copies[entry.file]: _openvino_runner(p, threads)))
    for entry in (e for e in ort if e.precision == "int8"):
        found.append(_Candidate("openvino", "int8", f"{entry.file} (ONNX Runtime's QDQ model)",
                                lambda p=copies[entry.file]: _openvino_runner(p, threads)))
    return found


def _reason(error: BaseException) -> str:
    if isinstance(error, ImportError):
        return f"not installed ({error.name or error})"
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text[:200]}" if not hasattr(error, "one_line") else error.one_line()[:240]


def compare_outputs(manifest: ArtifactManifest, copies: dict[str, Path], chunks: Iterable[tuple[np.ndarray, list | None]],
                    *, threads: int) -> tuple[RuntimeDiff, ...]:
    """Run every candidate on each chunk of images (loaded once), then compare with the reference."""
    found = candidates(manifest, copies, threads)
    runners: dict[int, Runner] = {}
    errors: dict[int, str] = {}
    for index, candidate in enumerate(found):
        try:
            runners[index] = candidate.load()
        except Exception as error:  # any runtime's own failure types: the row says why
            errors[index] = _reason(error)
    logits: dict[int, list[np.ndarray]] = {index: [] for index in runners}
    labels: list[int] = []
    labelled = True
    for batch, batch_labels in chunks:
        if batch_labels is None:
            labelled = False
        else:
            labels += list(batch_labels)
        for index in list(runners):
            try:
                logits[index].append(np.asarray(runners[index](batch), dtype=np.float32))
            except Exception as error:  # a runtime failing at inference: keep the others going
                errors[index] = _reason(error)
                del runners[index]
    outputs = {index: np.concatenate(logits[index]) for index in runners if logits[index]}
    reference = next((i for i in outputs if found[i].runtime == "pytorch"), None)
    if reference is None:
        reference = next((i for i in outputs if found[i].runtime == "onnxruntime" and found[i].precision == "fp32"),
                         None)
    rows = []
    for index, candidate in enumerate(found):
        if index not in outputs:
            rows.append(RuntimeDiff(candidate.runtime, candidate.precision, candidate.model, False,
                                    errors.get(index, "no output")))
            continue
        top1 = float(np.mean(outputs[index].argmax(1) == np.asarray(labels))) if labelled and labels else None
        compared = {}
        if reference is not None:
            try:
                compared = compare_logits(outputs[reference], outputs[index], reference_name=found[reference].model,
                                          candidate_name=candidate.model)
            except Exception as error:  # non-finite logits: say so on the row
                rows.append(RuntimeDiff(candidate.runtime, candidate.precision, candidate.model, False,
                                        _reason(error), top1=top1))
                continue
        rows.append(RuntimeDiff(candidate.runtime, candidate.precision, candidate.model, True,
                                max_abs_diff=compared.get("max_abs_diff"),
                                max_normalised_diff=compared.get("max_normalised_diff"),
                                top1_agreement=compared.get("top1_agreement"), top1=top1,
                                reference=index == reference))
    return tuple(rows)
