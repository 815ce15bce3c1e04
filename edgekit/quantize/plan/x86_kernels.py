"""x86 int8 kernel paths as plan candidates (x86 targets; edgekit.quantize.plan.ort_plans calls this).

ONNX Runtime's int8 arithmetic on x86 depends on the CPU (edgekit.targets.isa.ort_int8_kernels): u8 x s8 with
VNNI is exact; without VNNI, u8 x s8 with vpmaddubsw saturates its int16 pair sums on 8-bit weights,
and u8 x u8 (session.x64quantprecision=1, which edgekit sets there) is exact but slower. 7-bit
weights (ORT's reduce_range; the cpu profile's default) cannot saturate: ORT's fast kernels are
exact with them on every x86 CPU, with no session option, for one bit of weights. So on the best
plan so far this measures:
- the other weight width (7-bit from an 8-bit plan, 8-bit from a 7-bit one), judged like every
  candidate with the exact kernels;
- on a CPU without VNNI, the 8-bit plan with ORT's default kernels: faster than exact u8 x u8, and
  what their saturation costs on this model is measured on the judging images.
Whether either pays is a measurement, per model and CPU; choice.py prefers, at the same speed, an
int8 exact without options.
"""

from __future__ import annotations

from edgekit.artifact.plan_records import TRIED, PlanCandidate, speed_cost
from edgekit.quantize.plan.choice import fits
from edgekit.quantize.plan.trials import Trials, kernels_of
from edgekit.runtimes.board_runner import DEFAULT_KERNELS, EXACT_KERNELS

SEVEN_BIT, EIGHT_BIT, ORT_DEFAULT = "7bit", "8bit", "ort-default-kernels"
VARIANT = "kernel_variant"  # the settings key that marks a candidate made here


def kernel_paths_to_try(saturates: bool, base_bits: int) -> tuple[str, ...]:
    """The cpu profile's decision: the other weight width on any x86 CPU; ORT's default kernels on
    the 8-bit plan only where they differ from the exact ones (CPUs without VNNI)."""
    other = EIGHT_BIT if base_bits == 7 else SEVEN_BIT
    return (other, ORT_DEFAULT) if saturates else (other,)


def variant_base(candidates: list[PlanCandidate], *, max_drop: float, latency_measured: bool) -> PlanCandidate | None:
    """The plan whose kernel paths are tried: of the planner's own candidates (judged with exact
    kernels), the one that would ship now (fastest fitting, or most accurate fitting), else the
    most accurate."""
    own = [c for c in candidates if c.precision == "int8" and c.status == TRIED and VARIANT not in c.settings
           and kernels_of(c.settings) == EXACT_KERNELS]
    fitting = [c for c in own if fits(c, max_drop)]
    if fitting and latency_measured:
        return min(fitting, key=speed_cost)
    pool = fitting or own
    return max(pool, key=lambda c: c.accuracy) if pool else None


def try_kernel_paths(trials: Trials, attempt, *, saturates: bool) -> None:
    """Measure this CPU's other x86 kernel paths on the best plan so far (``attempt``: ort_plans')."""
    base = variant_base(trials.candidates, max_drop=trials.max_drop, latency_measured=trials.latency is not None)
    if base is None:
        return
    settings = base.settings
    eight_bit = base if settings.get("weight_bits") == 8 else None
    for path in kernel_paths_to_try(saturates, settings.get("weight_bits", 8)):
        if path in (SEVEN_BIT, EIGHT_BIT):
            made = attempt(f"{base.name}+{path}", settings["calibration"], settings["placement"],
                           list(settings.get("fallback_nodes", ())), reduce_range=path == SEVEN_BIT,
                           variant=path)
            if path == EIGHT_BIT and made.status == TRIED:
                eight_bit = made
        elif eight_bit is not None:  # the same 8-bit file, run with ORT's defaults
            source = eight_bit
            trials.measure(f"{source.name}+{ORT_DEFAULT}", "int8",
                           {**source.settings, "x86_int8_kernels": DEFAULT_KERNELS, VARIANT: ORT_DEFAULT},
                           lambda: trials.files[source.name])
