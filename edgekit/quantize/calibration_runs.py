"""Calibration statistics reduced per inference run, so memory does not grow with the image count.

ORT's calibrators keep every run's outputs until ``compute_data``; for percentile/entropy those
outputs are every intermediate tensor. Here each run's outputs are folded into running statistics
at once and dropped. The statistics stay equal to what ORT's calibrators computed when edgekit fed
them ``GROUP`` images per ``collect_data`` call (one run of 16 for dynamic-batch models):
- min/max: a group's range is the extreme over its images (ReduceMin/ReduceMax over several
  smaller runs combine exactly); ORT's own ``compute_data``/``merge_range`` then merge groups
  (global extremes, or the moving average of group ranges).
- histograms: a group's histogram is ORT's ``HistogramCollector`` merge of that group, computed
  in two passes over the group (range first, then counts, which add up exactly across runs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

GROUP = 16  # images per statistics update (ORT's collect_data call before): results depend on it
# Bytes of intermediate tensors one inference run may produce. With 256 MB, mobilenet_v2 (8 images
# per run) still added ~400 MB RSS during calibration; smaller runs cost little time on a few cores.
INTERMEDIATE_BUDGET = 64 * 1024 * 1024
_FLOAT_BYTES = {1: 4, 10: 2}  # onnx TensorProto FLOAT, FLOAT16


def per_image_bytes(calibrator) -> int | None:
    """Bytes of the calibrated intermediate tensors for one image (shape inference), None if unknown.

    For a histogram calibrator this is what one image's run returns; for min/max it bounds the
    activations ORT allocates inside the run."""
    tensors, value_infos = calibrator.select_tensors_to_calibrate(calibrator.model)
    total = 0
    for name in tensors:
        tensor_type = value_infos[name].type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim][1:]
        if any(d is None for d in dims):
            return None
        total += int(np.prod(dims, dtype=np.int64)) * _FLOAT_BYTES.get(tensor_type.elem_type, 4)
    return total


def images_per_run(fixed_batch: int | None, image_bytes: int | None, budget: int = INTERMEDIATE_BUDGET) -> int:
    """A fixed batch dimension is obeyed; otherwise the largest divisor of GROUP within the budget
    (a divisor, so runs never straddle two groups), one image when the size is unknown."""
    if fixed_batch is not None:
        return fixed_batch
    if not image_bytes:
        return 1
    return max((n for n in (16, 8, 4, 2, 1) if GROUP % n == 0 and n * image_bytes <= budget), default=1)


def _groups(images: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(images), GROUP):
        yield images[start:start + GROUP]


def _runs(group: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(group), size):
        yield group[start:start + size]


def collect_minmax(calibrator, images: np.ndarray, run_size: int, fixed_batch: bool,
                   advance: Callable[[int], None]):
    """Feed a MinMaxCalibrater group by group, holding one group's reduced outputs (a few floats
    per tensor). Returns ``calibrator.compute_data()`` as after ORT's own collect_data calls."""
    session = calibrator.infer_session
    outputs = session.get_outputs()
    input_name = session.get_inputs()[0].name
    original = calibrator.model_original_outputs
    reducers = [None if o.name in original else (np.fmin if o.name.endswith("_ReduceMin") else np.fmax)
                for o in outputs]
    for group in _groups(images):
        # What one ORT run over the group's images returned: with a fixed batch each run of that
        # batch is its own entry (ORT averages or takes extremes over them), else one entry.
        entries = []
        for run in _runs(group, run_size):
            values = session.run(None, {input_name: run})
            if fixed_batch or not entries:
                entries.append([None if r is None else v for r, v in zip(reducers, values)])
            else:
                entries[-1] = [None if r is None else r(old, new) for r, old, new in zip(reducers, entries[-1], values)]
            advance(len(run))
        calibrator.intermediate_outputs = entries
        calibrator.compute_data()  # merges the group into calibrate_tensors_range (ORT's merge_range)
        calibrator.clear_collected_data()
    return calibrator.compute_data()


def collect_histograms(calibrator, images: np.ndarray, run_size: int, advance: Callable[[int], None]):
    """Feed a HistogramCalibrater's collector group by group, one run's intermediates at a time.
    Returns ``calibrator.compute_data()``."""
    from onnxruntime.quantization.calibrate import HistogramCollector

    calibrator.collector = HistogramCollector(
        method=calibrator.method, symmetric=calibrator.symmetric, num_bins=calibrator.num_bins,
        num_quantized_bins=calibrator.num_quantized_bins, percentile=calibrator.percentile,
        scenario=calibrator.scenario)
    # ORT histograms |x| for symmetric percentile (collect_absolute_value), x otherwise (collect_value).
    absolute = calibrator.method == "percentile" and calibrator.symmetric
    session = calibrator.infer_session
    input_name = session.get_inputs()[0].name
    wanted = [(i, o.name) for i, o in enumerate(session.get_outputs()) if o.name in calibrator.tensors_to_calibrate]
    histograms = calibrator.collector.histogram_dict
    for group in _groups(images):
        ranges = {}
        for run in _runs(group, run_size):  # pass 1: the group's range of each tensor
            values = session.run(None, {input_name: run})
            for i, name in wanted:
                found = _value_range(values[i], absolute)
                ranges[name] = found if name not in ranges else _wider(ranges[name], found)
            del values
        plans = {name: (_absolute_plan if absolute else _value_plan)(histograms.get(name), ranges[name],
                                                                    calibrator.num_bins)
                 for _, name in wanted}
        counts = {}
        for run in _runs(group, run_size):  # pass 2: counts on the group's bins, additive over runs
            values = session.run(None, {input_name: run})
            for i, name in wanted:
                data = np.abs(values[i].ravel()) if absolute else values[i].ravel()
                hist, edges = np.histogram(data, plans[name]["bins"], range=plans[name]["range"])
                counts[name] = (hist, edges) if name not in counts else (counts[name][0] + hist, edges)
            del values, data
            advance(len(run))
        for _, name in wanted:
            merge = _merged_absolute if absolute else _merged_value
            histograms[name] = merge(histograms.get(name), plans[name], *counts[name], ranges[name])
    return calibrator.compute_data()


def _value_range(array: np.ndarray, absolute: bool) -> tuple:
    """(min, max) of the values, and for |x| histograms also (min |x|, max |x|)."""
    low, high = np.nanmin(array), np.nanmax(array)
    return (low, high, np.nanmin(np.abs(array)), max(abs(low), abs(high))) if absolute else (low, high)


def _wider(old: tuple, new: tuple) -> tuple:
    return tuple(min(a, b) if k % 2 == 0 else max(a, b) for k, (a, b) in enumerate(zip(old, new)))


def _value_plan(old, found: tuple, num_bins: int) -> dict:
    """Bins and range exactly as HistogramCollector.collect_value / merge_histogram choose them."""
    low, high = found
    threshold = np.array(max(abs(low), abs(high)), dtype=np.asarray(low).dtype)
    if old is None:
        return {"bins": num_bins, "range": (-threshold, threshold), "threshold": threshold, "offset": None}
    old_hist, _, _, _, old_threshold = old
    if threshold <= old_threshold:
        return {"bins": len(old_hist), "range": (-old_threshold, old_threshold), "threshold": old_threshold,
                "offset": 0, "keep_edges": True}
    if old_threshold == 0:
        return {"bins": len(old_hist), "range": (-threshold, threshold), "threshold": threshold, "offset": 0}
    stride = 2 * old_threshold / len(old_hist)
    half = int((threshold - old_threshold) // stride + 1)
    threshold = half * stride + old_threshold
    return {"bins": len(old_hist) + 2 * half, "range": (-threshold, threshold), "threshold": threshold,
            "offset": half}


def _merged_value(old, plan: dict, hist, edges, found: tuple) -> tuple:
    low, high = found
    if old is None:
        return hist, edges, low, high, plan["threshold"]
    old_hist, old_edges, old_low, old_high, _ = old
    hist[plan["offset"]:plan["offset"] + len(old_hist)] += old_hist
    if plan.get("keep_edges"):  # merge_histogram returns the old edges when the range did not grow
        edges = old_edges
    return hist, edges, min(old_low, low), max(old_high, high), plan["threshold"]


def _absolute_plan(old, found: tuple, num_bins: int) -> dict:
    """Bins exactly as HistogramCollector.collect_absolute_value chooses them: the first batch's
    |x| range in ``num_bins`` bins, later batches on those edges, extended upwards when needed."""
    if old is None:
        return {"bins": num_bins, "range": (found[2], found[3])}
    edges = old[1]
    if found[3] > edges[-1]:
        width = edges[1] - edges[0]
        edges = np.hstack((edges, np.arange(edges[-1] + width, found[3] + width, width)))
    return {"bins": edges, "range": None}


def _merged_absolute(old, plan: dict, hist, edges, found: tuple) -> tuple:
    low, high = found[:2]
    edges = edges.astype(np.asarray(low).dtype)
    if old is None:
        return hist, edges, low, high
    hist[:len(old[0])] += old[0]
    return hist, edges, min(old[2], low), max(old[3], high)
