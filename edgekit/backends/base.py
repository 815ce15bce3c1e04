"""What edgekit does with one inference runtime, behind one interface (as NNCF's algorithm backends).

A target profile names its runtime (``runtime = "openvino"``); ``Target.backend()`` finds
the module of that name in this folder and binds its backend to the target once. The build, the
int8 planner and the measurement worker then ask the backend, never the runtime's name:

- ``prepare``: the fp32 model in the runtime's own format (nothing to do for ONNX Runtime);
- ``quantize``: the target's fixed int8 recipe (a plain build);
- ``add_candidates`` / ``ship``: the int8 plans ``edgekit build --max-drop`` measures, and the chosen one;
- ``logits`` / ``latency`` / ``runner``: run a model file on images, time it, run it in the worker.

A new runtime is one module here defining ``BACKEND`` (a subclass of RuntimeBackend) and a target
profile that names it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from edgekit.artifact.manifest import ArtifactManifest, ModelEntry
from edgekit.quantize.settings import QuantizationSettings
from edgekit.runtimes.worker_process import measure_in_worker

FP32_ONNX = "model_fp32.onnx"  # every build's fp32 model, whatever the target's runtime


class RuntimeBackend:
    """One runtime, bound to one target profile (``self.target``: edgekit.targets.profiles.Target)."""

    runtime: ClassVar[str]  # the profile's ``runtime`` and the manifest's ``models[].runtime``
    settings_type: ClassVar[type[QuantizationSettings]]  # the profile's [quantization] table
    quantizer: ClassVar[str]  # the profile's quantization.backend
    model_format: ClassVar[str]  # the profile's quantization.format
    file_format: ClassVar[str]  # the manifest's models[].format of this runtime's model files
    profile_keys: ClassVar[tuple[str, ...]] = ()  # top-level profile keys only this runtime reads
    calibration_methods: ClassVar[tuple[str, ...]] = ()  # what --calib-method may choose (none: not offered)
    runs_on_board_runner: ClassVar[bool] = False  # its models run in the board runner (build/bench --host)

    def __init__(self, target) -> None:
        self.target = target
        # A BoardTimer (edgekit.runtimes.remote.runner) when the build times models on the board itself.
        self.board = None

    def timed_where(self) -> str:
        """Where ``latency`` times models, in words for the manifest and REPORT.md."""
        return f"board {self.board.label}" if self.board is not None else "this host"

    @classmethod
    def entry(cls, file: str, precision: str, **extra) -> ModelEntry:
        """The manifest entry of one of this runtime's model files."""
        return ModelEntry(file, cls.runtime, precision, format=cls.file_format, **extra)

    # ---- building ---------------------------------------------------------------------------------

    def prepare(self, folder: Path, manifest: ArtifactManifest) -> ArtifactManifest:
        """Add the fp32 model in this runtime's format to ``folder`` (the fp32 ONNX is already there)."""
        return manifest

    def fp32_file(self, folder: Path) -> Path:
        return folder / FP32_ONNX

    def quantize(self, folder: Path, manifest: ArtifactManifest, calibration: np.ndarray,
                 calibration_method: str | None = None) -> ArtifactManifest:
        """The target's fixed int8 recipe: the int8 model, its entry and its QuantizationRecord."""
        raise NotImplementedError

    # ---- the int8 planner (edgekit.quantize.plan.planner) ---------------------------------------

    def add_candidates(self, fp32_file: Path, scratch: Path, calibration: np.ndarray, trials, *,
                       labelled: bool) -> None:
        """Measure every candidate int8 plan of this runtime the budget allows, into ``trials``."""
        raise NotImplementedError

    def ship(self, folder: Path, source: Path, settings: dict) -> tuple[ModelEntry, dict]:
        """Copy the chosen plan's model ``source`` into ``folder``: its entry and the settings to record."""
        raise NotImplementedError

    # ---- running and timing -----------------------------------------------------------------------

    def logits(self, path: Path, images: np.ndarray, kernels: str | None = None) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def runner(cls, path: str, threads: int, job: dict) -> Callable[[np.ndarray], np.ndarray]:
        """Run one input batch (the measurement worker's inner loop)."""
        raise NotImplementedError

    def estimate_unavailable(self) -> str | None:
        """Why ``estimated_mcycles`` cannot rank plans for this target here (None: it can)."""
        return f"the {self.runtime} backend has no emulated cost model"

    def estimated_mcycles(self, path: Path, input_shape) -> float:
        """Estimated millions of target-CPU cycles per inference (a ranking where nothing can be timed)."""
        raise NotImplementedError

    def worker_job(self, path: Path, kernels: str | None) -> dict:
        """What the measurement worker needs besides the common fields (per runtime)."""
        return {}

    def latency(self, path: Path, input_shape, *, runs: int, warmup: int, max_seconds: float,
                kernels: str | None = None) -> float:
        """p50 in ms of ``path`` at ``input_shape`` with the target's threads, in a fresh worker process
        here, or on the board when the build has one."""
        if self.board is not None:
            return self.board.p50(path, input_shape, threads=self.target.threads, runs=runs, warmup=warmup,
                                  max_seconds=max_seconds, job=self.worker_job(path, kernels))
        result = measure_in_worker({"runtime": self.runtime, "model_path": str(path), "threads": self.target.threads,
                             "runs": runs, "warmup": warmup, "max_seconds": max_seconds,
                             "input_shape": list(input_shape), **self.worker_job(path, kernels)})
        if not result.get("ok"):
            raise RuntimeError(result.get("error", "the model failed to run"))
        return float(result["latency_ms"]["p50"])


def with_entries(manifest: ArtifactManifest, *entries: ModelEntry, **fields) -> ArtifactManifest:
    """``manifest`` with ``entries`` added to its models (and ``fields`` replaced)."""
    return replace(manifest, models=(*manifest.models, *entries), **fields)
