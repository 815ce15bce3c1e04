"""Which ranges to tighten: the costliest activations' recorded ranges against their data's.

MinMax calibration takes an activation's range from its extremes over every calibration image, so
one outlier widens the quantization step for every value. For the activations that carry most of
the int8 model's output noise (edgekit.diff.cost), half of the images (the fitting half)
give each one's data range: the mean over images of each image's min and max. That range clips
each image's peaks, and one image's outliers can matter more than every other value's rounding
(kEffNet-B0's costliest residual Add: MinMax's range 30x the data's; a range between them was
136x noisier in sum on held-out images, all of it from one image). So the candidates run
geometrically from the data range to the recorded one, data x (recorded width / data
width)^t for t in STEPS, and the held-out half, not the fitting one, says whether a choice holds.
Each pair is costed on the fitting half with each candidate and with its recorded range; the least
noisy wins. Its noise beside the recorded range's is then measured on the other half, in sum and
as the share of images it helps. Every pair whose range won on the fitting half
has it put into the int8 model together, and that model runs on the held-out half: what
re-choosing those ranges recovers, measured on images nothing was chosen on. Like the output cost,
it runs with basic optimisations only (Q/DQ as fake quantization in float), so it measures the
ranges and not a host's int8 kernels: on an AVX2 host without VNNI, ONNX Runtime's fused u8s8
kernels added their own error (the test CNN: 42.7 dB unfused, 28.8 dB fused; diff's per-layer
table names the fused kernels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.diff.cost import (
    PairModels,
    output_noise,
    qdq_pairs,
    sqnr_db,
    unfused_logits,
)
from edgekit.diff.report import OutputCostReport, RangeChoice, RangeReport

MIN_IMAGES = 4  # two to fit ranges on, two to score them
RANGE_BATCH = 8  # images per fp32 run that outputs the chosen activations: bounds their memory
STEPS = (0.0, 0.25, 0.5, 0.75)  # from the data range (0) towards the recorded range (1, as built)


def range_choices(models: PairModels, int8_path: Path, cost: OutputCostReport, images: np.ndarray, *,
                  limit: int) -> RangeReport | None:
    """The range choice of up to ``limit`` activations among the pairs carrying 90% of ``cost``'s
    noise, costliest first. None when there are too few images or no such activation."""
    import onnx

    by_tensor = {(pair["kind"], pair["tensor"]): pair for pair in qdq_pairs(onnx.load(str(int8_path)).graph)}
    worst = [by_tensor[("activation", c.tensor)] for c in cost.costs[:cost.pairs_for_share(0.9)]
             if c.kind == "activation" and ("activation", c.tensor) in by_tensor]
    usable = [pair for pair in worst if _recorded(pair, models.int8_constants) is not None][:limit]
    if len(images) < MIN_IMAGES or not usable:
        return None
    fit, score = images[0::2], images[1::2]
    observed = _per_image_ranges(models, [pair["tensor"] for pair in usable], fit)
    fit_reference = unfused_logits(models.fp32_path, fit, models.threads)
    reference = unfused_logits(models.fp32_path, score, models.threads)
    choices, replacements = [], {}
    for pair in usable:
        as_built_fit = models.logits_with(pair, fit)
        if as_built_fit is None:
            continue
        best_noise, best = output_noise(fit_reference, as_built_fit), None
        recorded = _recorded(pair, models.int8_constants)
        low, high = observed[pair["tensor"]]
        span = max(recorded[1] - recorded[0], 1e-30) / max(high - low, 1e-30)
        for step in STEPS:
            factor = span ** step
            candidate = (low * factor, high * factor)
            constants = _constants_for(pair, models.int8_constants, candidate)
            noise = output_noise(fit_reference, models.logits_with(pair, fit, constants))
            if noise < best_noise:
                best_noise, best = noise, (factor, candidate, constants)
        if best is None:  # the recorded range was the least noisy on the fitting half
            choices.append(RangeChoice(pair["tensor"], recorded, None, None, 1.0, None))
            continue
        factor, chosen, constants = best
        before = _per_image_noise(reference, models.logits_with(pair, score))
        after = _per_image_noise(reference, models.logits_with(pair, score, constants))
        choices.append(RangeChoice(pair["tensor"], recorded, chosen, factor,
                                   after.sum() / before.sum() if before.sum() > 0 else 1.0,
                                   float((after < before).mean())))
        replacements.update(constants)
    return _whole_model(models, int8_path, score, reference, choices, replacements, fit_images=len(fit))


def _per_image_noise(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    diff = reference.astype(np.float64) - other.astype(np.float64)
    return (diff.reshape(len(diff), -1) ** 2).sum(axis=1)


def _whole_model(models: PairModels, int8_path: Path, score: np.ndarray, reference: np.ndarray,
                 choices: list[RangeChoice], replacements: dict, *, fit_images: int) -> RangeReport:
    import onnx

    signal = float((reference.astype(np.float64) ** 2).sum())
    top1 = reference.argmax(1)

    def measured(path: Path) -> tuple[float, float]:
        logits = unfused_logits(path, score, models.threads)
        return float((logits.argmax(1) == top1).mean()), sqnr_db(signal, output_noise(reference, logits))

    recorded_agreement, recorded_sqnr = measured(int8_path)
    tightened_agreement = tightened_sqnr = None
    applied = sum(choice.chosen is not None for choice in choices)
    if replacements:
        model = onnx.load(str(int8_path))
        for init in model.graph.initializer:
            if init.name in replacements:
                init.CopyFrom(replacements[init.name])
        path = models.scratch / "int8_tightened.onnx"
        onnx.save_model(model, str(path))
        tightened_agreement, tightened_sqnr = measured(path)
    return RangeReport(fit_images=fit_images, score_images=len(score), choices=tuple(choices), applied=applied,
                       recorded_agreement=recorded_agreement, recorded_sqnr_db=recorded_sqnr,
                       tightened_agreement=tightened_agreement, tightened_sqnr_db=tightened_sqnr)


def _levels(zero_point: np.ndarray) -> tuple[int, int]:
    info = np.iinfo(zero_point.dtype)
    return int(info.min), int(info.max)


def _scale_and_zero_point(pair: dict, constants: dict) -> tuple[np.ndarray, np.ndarray] | None:
    from onnx import numpy_helper

    node = pair["node"]
    if len(node.input) < 3 or node.input[1] not in constants or node.input[2] not in constants:
        return None
    scale = numpy_helper.to_array(constants[node.input[1]])
    zero_point = numpy_helper.to_array(constants[node.input[2]])
    if scale.size != 1 or zero_point.size != 1 or zero_point.dtype.kind not in "iu":
        return None  # a per-channel or non-integer activation quantizer: not a range to tighten
    return scale, zero_point


def _recorded(pair: dict, constants: dict) -> tuple[float, float] | None:
    params = _scale_and_zero_point(pair, constants)
    if params is None:
        return None
    scale, zero_point = params
    low, high = _levels(zero_point)
    return float((low - zero_point.item()) * scale.item()), float((high - zero_point.item()) * scale.item())


def _constants_for(pair: dict, constants: dict, data: tuple[float, float]) -> dict:
    """The pair's scale and zero-point initializers re-made for the ``data`` range, same dtypes, and
    symmetric if the recorded ones were (zero point at the middle of the levels)."""
    from onnx import numpy_helper

    scale, zero_point = _scale_and_zero_point(pair, constants)
    low_level, high_level = _levels(zero_point)
    middle = (low_level + high_level + 1) // 2
    low, high = data
    if zero_point.item() == middle:  # symmetric: 0 for int8, 128 for uint8
        bound = max(-low, high)
        new_scale, new_zero = 2 * bound / (high_level - low_level), zero_point.item()
    else:
        new_scale = (high - low) / (high_level - low_level)
        new_zero = int(np.clip(round(low_level - low / new_scale), low_level, high_level)) if new_scale > 0 else 0
    new_scale = max(new_scale, float(np.finfo(np.float32).tiny))
    node = pair["node"]
    return {node.input[1]: numpy_helper.from_array(np.asarray(new_scale, dtype=scale.dtype).reshape(scale.shape),
                                                   node.input[1]),
            node.input[2]: numpy_helper.from_array(np.asarray(new_zero, dtype=zero_point.dtype).reshape(
                zero_point.shape), node.input[2])}


def _per_image_ranges(models: PairModels, tensors: list[str], images: np.ndarray) -> dict[str, tuple[float, float]]:
    """Each tensor's mean per-image min and max on ``images`` (fp32), widened to hold 0."""
    import onnx
    from onnx import helper

    from edgekit.runtimes.sessions import ort_session

    graph = onnx.GraphProto()
    graph.CopyFrom(models.base.graph)
    outputs = {value.name for value in graph.output}
    for name in tensors:
        if name not in outputs:
            graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort_session(models.save(graph, "fp32_chosen_outputs.onnx"), threads=models.threads,
                          basic_optimizations_only=True)
    feed_name = session.get_inputs()[0].name
    static_batch = session.get_inputs()[0].shape[0]
    batch = static_batch if isinstance(static_batch, int) else RANGE_BATCH
    minima: dict[str, list[np.ndarray]] = {name: [] for name in tensors}
    maxima: dict[str, list[np.ndarray]] = {name: [] for name in tensors}
    for start in range(0, len(images), batch):
        values = session.run(tensors, {feed_name: images[start:start + batch]})
        for name, value in zip(tensors, values, strict=True):
            flat = value.reshape(len(value), -1)
            minima[name].append(flat.min(axis=1))
            maxima[name].append(flat.max(axis=1))
    return {name: (min(float(np.concatenate(minima[name]).mean()), 0.0),
                   max(float(np.concatenate(maxima[name]).mean()), 0.0)) for name in tensors}
