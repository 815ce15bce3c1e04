"""ONNX Runtime (CPUExecutionProvider): runs the fp32 ONNX as it is, int8 as QDQ ONNX made by
onnxruntime.quantization (edgekit.quantize.ort), planned by edgekit.quantize.plan.ort_plans."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgekit.artifact.manifest import ArtifactManifest, ModelEntry, QuantizationRecord
from edgekit.artifact.records import LogitComparison
from edgekit.backends.base import RuntimeBackend, with_entries
from edgekit.core.progress import warn
from edgekit.quantize.ort import Int8LoadError, quantize_onnx_static
from edgekit.quantize.plan.ort_plans import plan_ort
from edgekit.quantize.plan.trials import kernels_of
from edgekit.quantize.settings import CALIBRATION_METHODS, OrtQuantizationSettings
from edgekit.runtimes.board_runner import EXACT_KERNELS
from edgekit.runtimes.compare import compare_logits
from edgekit.runtimes.sessions import ort_logits, ort_session

INT8_FILE = "model_int8.onnx"
QUANTIZER_TOOL = "onnxruntime.quantization.quantize_static"


class OnnxRuntimeBackend(RuntimeBackend):
    runtime = "onnxruntime"
    settings_type = OrtQuantizationSettings
    quantizer = "onnxruntime"
    model_format = "qdq"
    file_format = "onnx"
    calibration_methods = CALIBRATION_METHODS
    runs_on_board_runner = True

    def quantize(self, folder: Path, manifest: ArtifactManifest, calibration: np.ndarray,
                 calibration_method: str | None = None) -> ArtifactManifest:
        settings = self.target.quantization
        if calibration_method:
            settings = replace(settings, calibration_method=calibration_method)
        int8_path = folder / INT8_FILE
        try:
            record = quantize_onnx_static(self.fp32_file(folder), int8_path, calibration, settings)
        except Int8LoadError as error:  # an int8 some CPU cannot load never ships; fp32 does, with the reason
            int8_path.unlink(missing_ok=True)
            warn(f"no int8 model: {error.one_line()}")
            return replace(manifest, quantization=QuantizationRecord(skipped=f"int8 not shipped: {error.one_line()}"))
        comparison = LogitComparison.of(
            compare_logits(self.logits(self.fp32_file(folder), calibration), self.logits(int8_path, calibration),
                           reference_name="the fp32 ONNX model", candidate_name="the int8 ONNX model"),
            inputs="calibration images (in-sample)")
        entry = self.entry(INT8_FILE, "int8", x86_int8_kernels=EXACT_KERNELS)
        return with_entries(manifest, entry, quantization=QuantizationRecord(record, int8_vs_fp32=comparison))

    def add_candidates(self, fp32_file: Path, scratch: Path, calibration: np.ndarray, trials, *,
                       labelled: bool) -> None:
        plan_ort(fp32_file, scratch, calibration, self.target.quantization, trials,
                 x86=self.target.arch == "x86_64")

    def ship(self, folder: Path, source: Path, settings: dict) -> tuple[ModelEntry, dict]:
        shutil.copyfile(source, folder / INT8_FILE)
        entry = self.entry(INT8_FILE, "int8", x86_int8_kernels=kernels_of(settings))
        return entry, {**self.target.quantization.to_dict(), "calibration_method": settings["calibration"],
                       "tool": QUANTIZER_TOOL, **settings}

    def logits(self, path: Path, images: np.ndarray, kernels: str | None = None) -> np.ndarray:
        return ort_logits(path, images, kernels=kernels or EXACT_KERNELS)

    @classmethod
    def runner(cls, path: str, threads: int, job: dict):
        session = ort_session(path, threads=threads, kernels=job.get("x86_int8_kernels") or EXACT_KERNELS)
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]

    def estimate_unavailable(self) -> str | None:
        if self.target.cost_model is None:
            return f"target {self.target.name} names no cost_model"
        from edgekit.runtimes.emulation.a72_cost import a72_estimate_unavailable

        return a72_estimate_unavailable()

    def estimated_mcycles(self, path: Path, input_shape) -> float:
        """ORT's aarch64 build under qemu -cpu cortex-a72 (the only cost model: profiles.TOP_LEVEL), 1 thread."""
        from edgekit.runtimes.emulation.a72_cost import estimate_a72_cycles

        return estimate_a72_cycles(path, list(input_shape), threads=1).cycles / 1e6

    def worker_job(self, path: Path, kernels: str | None) -> dict:
        return {"x86_int8_kernels": kernels or EXACT_KERNELS}


BACKEND = OnnxRuntimeBackend
