"""Static int8 quantization with ONNX Runtime (QDQ format), calibrated on real images.

Calibration ranges are computed here with ORT's calibrator classes and handed to
``quantize_static`` as a calibration cache, for two reasons:
- ``quantize_static(calibrate_method=Entropy)`` builds its calibrator with num_bins ==
  num_quantized_bins == 128, so the KL search has a single candidate and Entropy silently equals
  MinMax in this ORT version. We pass 2048 histogram bins and 128 quantized bins (TensorRT's recipe).
- Calibrators keep every intermediate tensor of every sample until ``compute_data``; the
  statistics are reduced per inference run instead (edgekit.quantize.calibration_runs).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgekit.core.errors import EdgekitError
from edgekit.core.progress import progress, quiet_stdout
from edgekit.quantize.calibration_runs import (
    collect_histograms,
    collect_minmax,
    images_per_run,
    per_image_bytes,
)
from edgekit.quantize.settings import CALIBRATION_METHODS, OrtQuantizationSettings

ENTROPY_BINS = {"num_bins": 2048, "num_quantized_bins": 128}
PERCENTILE = {"num_bins": 2048, "percentile": 99.999}
MOVING_AVERAGE = {"moving_average": True, "averaging_constant": 0.01}
_TYPES = {"uint8": "QUInt8", "int8": "QInt8"}


def calibration_ranges(model_path: Path, images: np.ndarray, method: str, workdir: Path):
    """Per-tensor ranges (ORT TensorsData) from ``images`` with the chosen method.

    Memory stays bounded whatever the number of images: statistics are reduced per inference run
    (edgekit.quantize.calibration_runs) and each run is sized to ~INTERMEDIATE_BUDGET of tensors."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    methods = {"minmax": (CalibrationMethod.MinMax, {}),
               # The mean of per-batch ranges rather than the global extremes (NNCF's MEAN_MINMAX):
               # one outlier image no longer stretches a tensor's whole range.
               "moving-average": (CalibrationMethod.MinMax, MOVING_AVERAGE),
               "percentile": (CalibrationMethod.Percentile, PERCENTILE),
               "entropy": (CalibrationMethod.Entropy, ENTROPY_BINS)}
    if method not in methods:
        raise EdgekitError(f"unknown calibration method {method!r}; choose one of {', '.join(CALIBRATION_METHODS)}")
    ort_method, options = methods[method]
    # One float32 C-contiguous array: slices of it go to ORT without a further copy.
    images = np.ascontiguousarray(images, dtype=np.float32)
    with quiet_stdout():
        calibrator = create_calibrator(model_path, None, augmented_model_path=str(workdir / "augmented.onnx"),
                                       calibrate_method=ort_method, extra_options=options)
    # A model exported with a fixed batch size (e.g. 1) must be fed exactly that many images per run.
    batch = calibrator.infer_session.get_inputs()[0].shape[0]
    fixed_batch = batch if isinstance(batch, int) else None
    run_size = images_per_run(fixed_batch, per_image_bytes(calibrator))
    with progress(f"calibrating ({method})", len(images)) as advance, quiet_stdout():
        if ort_method == CalibrationMethod.MinMax:
            ranges = collect_minmax(calibrator, images, run_size, fixed_batch is not None, advance)
        else:
            ranges = collect_histograms(calibrator, images, run_size, advance)
    return ort_method, ranges


def quantize_onnx_static(source: Path, destination: Path, images: np.ndarray,
                         settings: OrtQuantizationSettings) -> dict:
    """fp32 ONNX -> int8 QDQ ONNX. Returns the settings actually used, for the manifest."""
    with tempfile.TemporaryDirectory(prefix="edgekit-calib-") as tmp:
        ranges = calibration_ranges(source, images, settings.calibration_method, Path(tmp))
    record = quantize_with_ranges(source, destination, ranges, settings)
    record["calibration_images"] = int(len(images))
    return record


def quantize_with_ranges(source: Path, destination: Path, ranges, settings: OrtQuantizationSettings, *,
                         nodes_to_exclude: tuple[str, ...] | list[str] = ()) -> dict:
    """fp32 ONNX -> int8 QDQ ONNX from ranges already computed (``calibration_ranges``' result), so
    that plans differing only in placement share one calibration. Nodes in ``nodes_to_exclude`` stay fp32."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data

    if settings.format != "qdq":
        raise EdgekitError(f"ORT quantization supports format 'qdq' only, the target asks for {settings.format!r}")
    for kind in (settings.activation_type, settings.weight_type):
        if kind not in _TYPES:
            raise EdgekitError(f"quantization type must be uint8 or int8, got {kind!r}")
    ort_method, tensor_ranges = ranges
    with tempfile.TemporaryDirectory(prefix="edgekit-quant-") as tmp:
        cache = Path(tmp) / "ranges.json"
        save_tensors_data(tensor_ranges, cache)
        try:
            with quiet_stdout():
                quantize_static(
                    str(source), str(destination), calibration_data_reader=None,
                    calibration_cache_path=str(cache), calibrate_method=ort_method,
                    quant_format=QuantFormat.QDQ, per_channel=settings.per_channel,
                    reduce_range=settings.reduce_range,
                    activation_type=getattr(QuantType, _TYPES[settings.activation_type]),
                    weight_type=getattr(QuantType, _TYPES[settings.weight_type]),
                    nodes_to_exclude=list(nodes_to_exclude),
                )
        except Exception as error:  # ORT's quantizer raises ValueError/KeyError/RuntimeError for bad graphs
            raise EdgekitError(f"ONNX Runtime static quantization of {source.name} failed") from error
    record = settings.to_dict()
    record["tool"] = "onnxruntime.quantization.quantize_static"
    record.update(make_loadable_everywhere(destination))
    options = {"entropy": ENTROPY_BINS, "percentile": PERCENTILE, "moving-average": MOVING_AVERAGE}
    if settings.calibration_method in options:
        record["calibration_options"] = dict(options[settings.calibration_method])
    if nodes_to_exclude:
        record["nodes_kept_fp32"] = list(nodes_to_exclude)
    return record


class Int8LoadError(EdgekitError):
    """An int8 model that some x86 CPU's ONNX Runtime session would refuse: never shipped."""


def make_loadable_everywhere(path: Path) -> dict:
    """Repair ``path`` in place so that ORT loads it with its default and with its exact x86 int8
    kernels (edgekit.quantize.int8_graph), then prove it by loading it both ways here. Returns what
    the manifest records: the weight bits and how many weight dequantizers were given their own."""
    import onnx

    from edgekit.quantize.int8_graph import (
        exact_option_collisions,
        int8_weight_bits,
        separate_shared_weights,
    )
    from edgekit.runtimes.board_runner import EXACT_INT8_OPTIONS
    from edgekit.runtimes.sessions import ort_session

    model = onnx.load(str(path))
    separated = separate_shared_weights(model)
    if separated:
        onnx.save(model, str(path))
    collisions = exact_option_collisions(model)
    if collisions:  # the graph alone says it; no CPU needed to see it
        raise Int8LoadError(f"{path.name} would not load with {_named(EXACT_INT8_OPTIONS)} (exact int8 kernels for "
                            f"x86 CPUs without AVX-512 VNNI): int8 tensor {collisions[0]} is rewritten twice")
    # The option is read wherever ORT's u8 x u8 and u8 x s8 kernels differ: on every x86 CPU it was
    # tried on, VNNI ones included, so this proves the load on this host for the CPUs that need it.
    for config in ({}, EXACT_INT8_OPTIONS):
        try:
            ort_session(path, threads=1, config=config)
        except EdgekitError as error:
            raise Int8LoadError(error.one_line()) from None
    record = {"weight_bits": int8_weight_bits(model)}
    if separated:
        record["weight_dequantizers_separated"] = separated
    return record


def _named(options: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in options.items())
