"""Which measured candidate ships: the fastest (or smallest) within the accuracy budget, else fp32."""

from __future__ import annotations

from edgekit.artifact.plan_records import TRIED, PlanCandidate, speed_cost, speed_words
from edgekit.quantize.plan.request import PlanRequest

OBJECTIVES = ("latency", "size")
# Plans whose sizes differ by less than this share are the same size to a user (the same weights,
# a few more or fewer scale/zero-point pairs): among them the most accurate ships.
SAME_SIZE = 0.01
# int8 plans whose p50s differ by less than this share are the same speed to a user (a shared
# machine's run-to-run noise is of this order): among them one exact on every x86 CPU without
# session options ships (7-bit weights), so the artifact cannot silently lose accuracy elsewhere.
SAME_SPEED = 0.05


def exact_without_options(candidate: PlanCandidate) -> bool:
    """int8 whose weights fit 7 bits: ONNX Runtime's fast u8 x s8 kernels cannot saturate on it."""
    return candidate.settings.get("weight_bits") == 7


def fits(candidate: PlanCandidate, max_drop: float) -> bool:
    return candidate.status == TRIED and candidate.drop is not None and candidate.drop <= max_drop + 1e-9


def choose(candidates: list[PlanCandidate], request: PlanRequest, *, latency_measured: bool) -> tuple[str, str]:
    """(name of the candidate to ship, why). The fp32 candidate always fits (it is the reference)."""
    objective, max_drop = request.objective, request.max_drop
    fp32 = next(c for c in candidates if c.precision == "fp32")
    int8_tried = [c for c in candidates if c.precision == "int8" and c.status == TRIED]
    within = [c for c in candidates if fits(c, max_drop)]
    int8_within = [c for c in within if c.precision == "int8"]
    if not int8_within:
        if not int8_tried:
            return fp32.name, "no int8 plan could be tried within the plan budget: fp32 ships"
        best = min(int8_tried, key=lambda c: c.drop)
        return fp32.name, (f"no int8 plan is within {max_drop:g} points: the best, {best.name}, loses "
                           f"{best.drop:.2f} points; fp32 ships")
    if objective == "latency" and latency_measured and all(speed_cost(c) is not None for c in within):
        fastest = min(within, key=speed_cost)
        if fastest.precision == "fp32":
            quickest_int8 = min(int8_within, key=speed_cost)
            return fp32.name, (f"every int8 plan within {max_drop:g} points is slower than fp32 {_where(fp32)} "
                               f"(fastest {quickest_int8.name}: {speed_words(quickest_int8, fp32)} of fp32): fp32 ships")
        portable = [c for c in int8_within
                    if exact_without_options(c) and speed_cost(c) <= speed_cost(fastest) * (1 + SAME_SPEED)]
        if portable and not exact_without_options(fastest):
            chosen = min(portable, key=speed_cost)
            return chosen.name, (f"within {100 * SAME_SPEED:g}% of the fastest plan within {max_drop:g} points "
                                 f"({fastest.name}) and exact on every x86 CPU without session options (7-bit "
                                 f"weights): {speed_cost(fp32) / speed_cost(chosen):.2f}x fp32 ({speed_words(chosen, fp32)}), "
                                 f"{_drop_words(chosen)}")
        return fastest.name, (f"fastest plan within {max_drop:g} points {_where(fastest)}: "
                              f"{speed_cost(fp32) / speed_cost(fastest):.2f}x fp32 ({speed_words(fastest, fp32)}), "
                              f"{_drop_words(fastest)}")
    least = min(c.size_bytes for c in within)
    smallest = min((c for c in within if c.size_bytes <= least * (1 + SAME_SIZE)), key=lambda c: (c.drop, c.size_bytes))
    why_size = ("objective size" if objective == "size"
                else "latency was not measured for this target, so the choice is by size")
    return smallest.name, (f"smallest plan within {max_drop:g} points ({why_size}): {smallest.size_bytes / 1e6:.2f} MB "
                           f"vs fp32 {fp32.size_bytes / 1e6:.2f} MB, {_drop_words(smallest)}")


def _where(candidate: PlanCandidate) -> str:
    return "as timed" if candidate.p50_ms is not None else "by estimated Cortex-A72 cycles"


def _drop_words(candidate: PlanCandidate) -> str:
    if candidate.drop > 0:
        return f"{candidate.drop:.2f} points below fp32"
    return f"{-candidate.drop:.2f} points above fp32" if candidate.drop < 0 else "no accuracy lost"
