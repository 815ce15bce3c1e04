"""OpenVINO (CPU plugin): the fp32 ONNX converted once to an fp32 IR, int8 by NNCF on that IR
(edgekit.quantize.openvino), planned by edgekit.quantize.plan.openvino_plans."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from edgekit.artifact.manifest import ArtifactManifest, ModelEntry, QuantizationRecord
from edgekit.artifact.records import LogitComparison
from edgekit.backends.base import FP32_ONNX, RuntimeBackend, with_entries
from edgekit.core.progress import say
from edgekit.quantize.openvino import convert_to_openvino, quantize_openvino
from edgekit.quantize.plan.openvino_plans import plan_openvino
from edgekit.quantize.settings import NncfQuantizationSettings
from edgekit.runtimes.compare import compare_logits
from edgekit.runtimes.sessions import openvino_compiled, openvino_logits

IR_FOLDER = "openvino"
TARGET_DEVICE = "CPU"


class OpenVinoBackend(RuntimeBackend):
    runtime = "openvino"
    settings_type = NncfQuantizationSettings
    quantizer = "nncf"
    model_format = "openvino-ir"
    file_format = "openvino-ir"
    # On CPUs with AMX/AVX-512 BF16 OpenVINO runs "fp32" models in bf16 unless told otherwise.
    profile_keys = ("inference_precision",)

    @classmethod
    def ir_entry(cls, precision: str) -> ModelEntry:
        return cls.entry(f"{IR_FOLDER}/model_{precision}.xml", precision,
                         companions=(f"{IR_FOLDER}/model_{precision}.bin",))

    def prepare(self, folder: Path, manifest: ArtifactManifest) -> ArtifactManifest:
        (folder / IR_FOLDER).mkdir()
        conversion = convert_to_openvino(folder / FP32_ONNX, self.fp32_file(folder))
        return with_entries(manifest, self.ir_entry("fp32"), conversion=conversion)

    def fp32_file(self, folder: Path) -> Path:
        return folder / self.ir_entry("fp32").file

    def quantize(self, folder: Path, manifest: ArtifactManifest, calibration: np.ndarray,
                 calibration_method: str | None = None) -> ArtifactManifest:
        int8_file = folder / self.ir_entry("int8").file
        say("quantizing with NNCF")
        record = quantize_openvino(self.fp32_file(folder), int8_file, calibration, self.target.quantization)
        comparison = LogitComparison.of(
            compare_logits(self.logits(self.fp32_file(folder), calibration), self.logits(int8_file, calibration),
                           reference_name="the fp32 OpenVINO model", candidate_name="the int8 OpenVINO model"),
            inputs="calibration images (in-sample)")
        return with_entries(manifest, self.ir_entry("int8"),
                            quantization=QuantizationRecord(record, int8_vs_fp32=comparison))

    def add_candidates(self, fp32_file: Path, scratch: Path, calibration: np.ndarray, trials, *,
                       labelled: bool) -> None:
        plan_openvino(fp32_file, scratch, calibration, self.target.quantization, trials,
                      precision=self.target.inference_precision, labelled=labelled)

    def ship(self, folder: Path, source: Path, settings: dict) -> tuple[ModelEntry, dict]:
        entry = self.ir_entry("int8")
        target = folder / entry.file
        shutil.copyfile(source, target)
        shutil.copyfile(source.with_suffix(".bin"), target.with_suffix(".bin"))
        return entry, {**self.target.quantization.to_dict(), **settings, "target_device": TARGET_DEVICE}

    def logits(self, path: Path, images: np.ndarray, kernels: str | None = None) -> np.ndarray:
        return openvino_logits(path, images, precision=self.target.inference_precision)

    @classmethod
    def runner(cls, path: str, threads: int, job: dict):
        compiled = openvino_compiled(path, threads=threads, precision=job.get("inference_precision"))
        request = compiled.create_infer_request()
        return lambda x: request.infer({0: x})[0]

    def worker_job(self, path: Path, kernels: str | None) -> dict:
        return {"inference_precision": self.target.inference_precision}


BACKEND = OpenVinoBackend
