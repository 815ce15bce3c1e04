"""ONNX -> OpenVINO IR (fp32) and NNCF post-training int8 for the OpenVINO target."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.artifact.records import ConversionRecord
from edgekit.core.errors import EdgekitError
from edgekit.quantize.settings import NncfQuantizationSettings


def convert_to_openvino(source: Path, destination: Path) -> ConversionRecord:
    """Write an fp32 IR (``.xml`` + ``.bin``). ``ov.save_model`` would halve weights to fp16 by
    default; an artifact labelled fp32 keeps fp32 weights."""
    import openvino as ov

    try:
        model = ov.convert_model(str(source))
    except Exception as error:  # OpenVINO's frontend raises OpConversionFailure and friends
        raise EdgekitError(f"OpenVINO cannot convert {source.name} (unsupported op?)") from error
    ov.save_model(model, str(destination), compress_to_fp16=False)
    return ConversionRecord(tool="openvino.convert_model", openvino=ov.__version__, weights="fp32")


def quantize_openvino(source_xml: Path, destination: Path, images: np.ndarray,
                      settings: NncfQuantizationSettings) -> dict:
    import nncf
    import openvino as ov

    presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    if settings.preset not in presets:
        raise EdgekitError(f"NNCF preset must be one of {', '.join(presets)}, got {settings.preset!r}")
    model = ov.Core().read_model(str(source_xml))
    dataset = nncf.Dataset([images[i:i + 1] for i in range(len(images))])
    try:
        quantized = nncf.quantize(model, dataset, preset=presets[settings.preset],
                                  target_device=nncf.TargetDevice.CPU, subset_size=len(images))
    except Exception as error:  # NNCF wraps backend failures in many types
        raise EdgekitError("NNCF quantization failed") from error
    ov.save_model(quantized, str(destination), compress_to_fp16=False)
    record = settings.to_dict()
    record.update(tool="nncf.quantize", nncf=nncf.__version__, target_device="CPU",
                  calibration_images=int(len(images)))
    return record
