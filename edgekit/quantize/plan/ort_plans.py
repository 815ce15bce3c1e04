"""Candidate int8 plans for ONNX Runtime targets, tried in order of promise until one fits the budget.

1. the target's fixed recipe (MinMax, every op ORT supports);
2. moving-average MinMax (mean of per-batch ranges), every op;
3. NNCF-like placement (Sigmoid, SiLU and SE gates stay fp32) with either calibration;
4. where latency is measured and the graph has nodes whose int8 kernels are slow (grouped convs,
   float BatchNormalization, depthwise convs with a channel multiplier): the best plan so far with
   each such group, then all of them, kept in fp32 (latency-aware mixed precision, judged by the
   whole model's measured time like every other candidate);
5. entropy and percentile calibration with the better placement;
6. only if nothing fits yet: fp32 fallback of the tensors that add the most error (ranked per
   tensor, whole groups), greedily 1, 2, 4, 8 ... groups until the accuracy budget is met;
7. x86 targets: the best plan so far with the other int8 kernel paths of this CPU
   (edgekit.quantize.plan.x86_kernels): the other weight width (7 or 8 bits), and on CPUs without
   VNNI the 8-bit plan with ORT's saturating default kernels.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from edgekit.artifact.plan_records import TRIED
from edgekit.core.progress import say
from edgekit.quantize.ort import calibration_ranges, quantize_with_ranges
from edgekit.quantize.plan.deadline import call_within
from edgekit.quantize.plan.placement import (
    fallback_units,
    nncf_like_exclusions,
    nodes_to_fall_back,
    slow_int8_nodes,
)
from edgekit.quantize.plan.trials import FIXED, Trials
from edgekit.quantize.plan.x86_kernels import VARIANT, try_kernel_paths
from edgekit.quantize.settings import OrtQuantizationSettings
from edgekit.rewrite.patterns import DEPTHWISE_MULTIPLIER, FLOAT_BN, GROUPED_CONV
from edgekit.runtimes.board_runner import int8_saturates_here

RANKING_IMAGES = 16  # calibration images used to rank tensors by their quantization error
MAX_FALLBACK_STEPS = 8  # 1, 2, 4 ... 128 groups
# A histogram calibration (entropy, percentile) runs every tensor's histogram in two passes: several
# times the cost of a MinMax candidate, so it starts only if that much budget is left.
HISTOGRAM_COST_FACTOR = 4.0
HISTOGRAM_METHODS = ("entropy", "percentile")


def plan_ort(fp32_path: Path, workdir: Path, calibration: np.ndarray, settings: OrtQuantizationSettings,
             trials: Trials, *, x86: bool = False) -> None:
    """Add every ORT candidate the budget allows to ``trials`` (the fp32 candidate is already there).
    ``x86``: the target is an x86 CPU, whose int8 kernel paths are candidates too."""
    import onnx

    ranges: dict[str, tuple] = {}

    def calibrated(method: str):
        if method not in ranges:
            if method in HISTOGRAM_METHODS:  # cost unpredictable: stopped at the budget (deadline.py)
                left = trials.seconds_left()
                arguments = (fp32_path, calibration, method, workdir)
                ranges[method] = (calibration_ranges(*arguments) if left is None else
                                  call_within(calibration_ranges, arguments, left, f"{method} calibration"))
            else:
                ranges[method] = calibration_ranges(fp32_path, calibration, method, workdir)
        return ranges[method]

    graph = onnx.load(str(fp32_path))
    se_and_silu = nncf_like_exclusions(graph)
    placements = {"all": [], "nncf-like": se_and_silu}

    def attempt(name: str, method: str, placement: str, extra_fp32: list[str] = (), *, reduce_range: bool | None = None,
                variant: str | None = None, fp32_for_speed: tuple[str, ...] = ()):
        excluded = list(dict.fromkeys([*placements[placement], *extra_fp32]))
        chosen = replace(settings, calibration_method=method,
                         reduce_range=settings.reduce_range if reduce_range is None else reduce_range)
        path = workdir / f"{name}.onnx"
        record = {"calibration": method, "placement": placement}
        if excluded:
            record["nodes_kept_fp32"] = len(excluded)
        if extra_fp32 and not fp32_for_speed:
            record["fallback_nodes"] = list(extra_fp32)
        if fp32_for_speed:
            record["fp32_for_speed"] = list(fp32_for_speed)  # the slow-int8 patterns kept in fp32
        if chosen.reduce_range != settings.reduce_range:
            record["reduce_range"] = chosen.reduce_range
        if variant is not None:
            record[VARIANT] = variant

        def make() -> tuple[Path, dict]:
            made = quantize_with_ranges(fp32_path, path, calibrated(method), chosen, nodes_to_exclude=excluded)
            return path, {"weight_bits": made["weight_bits"]}

        new_histograms = method in HISTOGRAM_METHODS and method not in ranges
        return trials.measure(name, "int8", record, make,
                              cost_factor=HISTOGRAM_COST_FACTOR if new_histograms else 1.0)

    fixed_method = settings.calibration_method
    attempt(FIXED, fixed_method, "all")
    for method in dict.fromkeys(["moving-average", fixed_method]):
        if method != fixed_method:
            attempt(f"{method}", method, "all")
    if se_and_silu:
        for method in dict.fromkeys([_best(trials, "calibration") or fixed_method, "moving-average", fixed_method]):
            attempt(f"{method}+nncf-like", method, "nncf-like")
    else:
        say("  plan: no Sigmoid/SiLU/SE in this graph; NNCF-like placement equals ORT's")
    slow = slow_int8_nodes(graph)
    if slow and trials.latency is not None:  # before the costly histogram calibrations: speed is why they are here
        _latency_aware(trials, attempt, slow)
    placement = _best(trials, "placement") or "all"
    for method in ("entropy", "percentile"):
        attempt(f"{method}" + ("+nncf-like" if placement == "nncf-like" else ""), method, placement)
    if not trials.any_int8_fits():
        _greedy_fallback(fp32_path, calibration, trials, attempt)
    if x86:
        try_kernel_paths(trials, attempt, saturates=int8_saturates_here())


def _best(trials: Trials, setting: str):
    """The ``setting`` (calibration or placement) of the most accurate int8 candidate so far."""
    tried = [c for c in trials.candidates if c.precision == "int8" and c.status == TRIED]
    return max(tried, key=lambda c: c.accuracy).settings[setting] if tried else None


def _latency_aware(trials: Trials, attempt, slow: dict[str, list[str]]) -> None:
    """The most accurate plan so far with each slow-int8 pattern's nodes in fp32, then all of them."""
    tried = [c for c in trials.candidates if c.precision == "int8" and c.status == TRIED]
    if not tried:
        return
    base = max(tried, key=lambda c: c.accuracy)
    method, placement = base.settings["calibration"], base.settings["placement"]
    say(f"  plan: {', '.join(f'{len(n)} {p}' for p, n in slow.items())} run slowly in int8; timing them in fp32")
    groups = [(pattern,) for pattern in slow] + ([tuple(slow)] if len(slow) > 1 else [])
    for patterns in groups:
        slug = "all-slow" if len(patterns) > 1 else SLUGS.get(patterns[0], "slow")
        nodes = [name for pattern in patterns for name in slow[pattern]]
        attempt(f"{base.name}+fp32-{slug}", method, placement, nodes, fp32_for_speed=patterns)


SLUGS = {GROUPED_CONV: "grouped", FLOAT_BN: "bn", DEPTHWISE_MULTIPLIER: "dw-multiplier"}


def _greedy_fallback(fp32_path: Path, calibration: np.ndarray, trials: Trials, attempt) -> None:
    tried = [c for c in trials.candidates if c.precision == "int8" and c.status == TRIED]
    if not tried or not trials.has_time():
        return
    base = max(tried, key=lambda c: c.accuracy)
    method, placement = base.settings["calibration"], base.settings["placement"]
    say(f"  plan: no int8 plan within {trials.max_drop:g} points; keeping the most sensitive tensors of {base.name} in fp32")
    units = fallback_units(fp32_path, trials.files[base.name], calibration[:RANKING_IMAGES])
    count = 1
    for _ in range(MAX_FALLBACK_STEPS):
        if count > len(units):
            break
        nodes = nodes_to_fall_back(units, count)
        candidate = attempt(f"{base.name}+fallback{count}", method, placement, nodes)
        if candidate.status != TRIED or trials.fits(candidate):
            break
        count *= 2
