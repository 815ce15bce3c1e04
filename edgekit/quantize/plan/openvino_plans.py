"""Candidate int8 plans for the OpenVINO target, all made by NNCF on the fp32 IR.

1. the target's fixed recipe (``nncf.quantize``, its preset);
2. the MIXED preset (asymmetric activations: what a ReLU6-free network with negative activations needs);
3. ``nncf.quantize_with_accuracy_control`` with the same ``max_drop`` on the same held-out images:
   NNCF ranks its quantizer groups by their effect on that metric and reverts the worst to fp32
   until the drop is within budget (its own greedy fallback, run on OpenVINO itself).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.core.errors import EdgekitError
from edgekit.core.progress import quiet_stdout
from edgekit.quantize.plan.deadline import call_within
from edgekit.quantize.plan.trials import FIXED, Trials
from edgekit.quantize.settings import NncfQuantizationSettings


def plan_openvino(fp32_xml: Path, workdir: Path, calibration: np.ndarray, settings: NncfQuantizationSettings,
                  trials: Trials, *, precision: str | None, labelled: bool) -> None:
    """Add every OpenVINO candidate the budget allows to ``trials`` (the fp32 IR is already there)."""
    import nncf

    presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}

    def plain(name: str, preset: str):
        def make() -> Path:
            return _save(_quantize(fp32_xml, calibration, presets[preset]), workdir / name / "model.xml")

        return trials.measure(name, "int8", {"tool": "nncf.quantize", "preset": preset}, make)

    plain(FIXED, settings.preset)
    if settings.preset != "mixed":
        plain("mixed", "mixed")
    if trials.any_int8_fits():
        return

    truth = trials.truth if trials.truth.ndim == 1 else trials.truth.argmax(1)
    arguments = (fp32_xml, calibration, trials.judge, truth, settings.preset, trials.max_drop,
                 workdir / "accuracy-control" / "model.xml")

    def controlled() -> Path:
        # NNCF's search re-validates the model once per reverted group: its cost is not known in
        # advance (355 s against a 174 s budget on kEffNet), so it runs where it can be stopped.
        left = trials.seconds_left()
        if left is None:
            return accuracy_controlled_file(*arguments)
        return call_within(accuracy_controlled_file, arguments, left, "NNCF accuracy control")

    metric = "top-1 against labels" if labelled else "top-1 agreement with fp32"
    trials.measure("accuracy-control", "int8", {"tool": "nncf.quantize_with_accuracy_control",
                                                "preset": settings.preset, "max_drop_points": trials.max_drop,
                                                "metric": metric}, controlled)


def _dataset(images: np.ndarray):
    import nncf

    return nncf.Dataset([images[i:i + 1] for i in range(len(images))])


def _quantize(fp32_xml: Path, calibration: np.ndarray, preset):
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(fp32_xml))
    try:
        with quiet_stdout():
            return nncf.quantize(model, _dataset(calibration), preset=preset, target_device=nncf.TargetDevice.CPU,
                                 subset_size=len(calibration))
    except Exception as error:  # NNCF wraps backend failures in many types
        raise EdgekitError(f"NNCF quantization failed: {error}") from error


def accuracy_controlled_file(fp32_xml: Path, calibration: np.ndarray, judge: np.ndarray, truth: np.ndarray,
                             preset_name: str, max_drop: float, destination: Path) -> Path:
    """``nncf.quantize_with_accuracy_control`` on the fp32 IR, saved to ``destination`` (module level
    and file to file, so that it can run in a child process)."""
    import nncf
    import openvino as ov

    preset = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}[preset_name]
    validation = nncf.Dataset([(judge[i:i + 1], int(truth[i])) for i in range(len(truth))],
                              lambda item: item[0])

    def validate(compiled, items) -> tuple[float, list[float]]:
        output = compiled.output(0)
        hits = [float(np.argmax(compiled(image)[output]) == label) for image, label in items]
        return float(np.mean(hits)), hits

    model = ov.Core().read_model(str(fp32_xml))
    try:
        with quiet_stdout():
            quantized = nncf.quantize_with_accuracy_control(
                model, _dataset(calibration), validation, validate, max_drop=max_drop / 100.0,
                drop_type=nncf.DropType.ABSOLUTE, preset=preset, target_device=nncf.TargetDevice.CPU,
                subset_size=len(calibration))
    except Exception as error:  # NNCF wraps backend failures in many types
        raise EdgekitError(f"NNCF accuracy-controlled quantization failed: {error}") from error
    return _save(quantized, destination)


def _save(model, path: Path) -> Path:
    import openvino as ov

    path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(path), compress_to_fp16=False)
    return path
