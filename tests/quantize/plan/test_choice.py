from edgekit.artifact.plan_records import PlanCandidate, QuantizationPlan
from edgekit.quantize.plan.choice import choose
from edgekit.quantize.plan.request import PlanRequest


def _c(name, precision, drop, p50, size, status="tried"):
    return PlanCandidate(name, precision, {}, status, accuracy=90 - drop, drop=drop, p50_ms=p50, size_bytes=size,
                         within_budget=None)


def test_fastest_plan_within_the_budget_ships():
    candidates = [_c("fp32", "fp32", 0, 1.0, 400), _c("fixed", "int8", 3.0, 0.3, 100), _c("ma", "int8", 0.4, 0.5, 100),
                  _c("nncf", "int8", 0.2, 0.6, 100)]
    chosen, reason = choose(candidates, PlanRequest(max_drop=0.5, objective="latency"), latency_measured=True)
    assert chosen == "ma" and "2.00x fp32" in reason


def test_fp32_ships_when_no_int8_plan_fits_or_none_is_faster():
    candidates = [_c("fp32", "fp32", 0, 1.0, 400), _c("fixed", "int8", 3.0, 0.3, 100)]
    chosen, reason = choose(candidates, PlanRequest(max_drop=1, objective="latency"), latency_measured=True)
    assert chosen == "fp32" and "fixed" in reason and "3.00 points" in reason
    slower = [_c("fp32", "fp32", 0, 1.0, 400), _c("fixed", "int8", 0.1, 1.4, 100)]
    chosen, reason = choose(slower, PlanRequest(max_drop=1, objective="latency"), latency_measured=True)
    assert chosen == "fp32" and "slower than fp32" in reason


def test_without_latency_or_for_size_the_smallest_fitting_plan_ships():
    candidates = [_c("fp32", "fp32", 0, None, 400), _c("fixed", "int8", 2.0, None, 100),
                  _c("fallback", "int8", 0.5, None, 180), _c("nncf", "int8", 0.3, None, 150)]
    chosen, reason = choose(candidates, PlanRequest(max_drop=1, objective="latency"), latency_measured=False)
    assert chosen == "nncf" and "latency was not measured" in reason
    skipped = [_c("fp32", "fp32", 0, None, 400), PlanCandidate("fixed", "int8", {}, "not tried: plan budget")]
    assert choose(skipped, PlanRequest(max_drop=1, objective="size"), latency_measured=False)[0] == "fp32"


def test_plan_record_round_trips():
    plan = QuantizationPlan("latency", 1.0, "top-1", {"images": 3}, 90.0, "measured", 60.0, 12.5,
                            (_c("fp32", "fp32", 0, 1.0, 400), _c("fixed", "int8", 0.2, 0.5, 100)), "fixed", "why")
    assert QuantizationPlan.from_dict(plan.to_dict()) == plan


def test_plans_of_the_same_size_are_told_apart_by_accuracy():
    # nncf-like placements differ by a few scale/zero-point bytes: the 74 bytes must not buy a worse model
    candidates = [_c("fp32", "fp32", 0, None, 2_648_093), _c("minmax", "int8", -0.85, None, 1_708_601),
                  _c("entropy", "int8", 0.85, None, 1_708_527), _c("fixed", "int8", -0.45, None, 1_839_203)]
    chosen, _ = choose(candidates, PlanRequest(max_drop=1, objective="size"), latency_measured=False)
    assert chosen == "minmax"


def _bits(candidate, bits):
    return PlanCandidate(candidate.name, candidate.precision, {"weight_bits": bits}, candidate.status,
                         accuracy=candidate.accuracy, drop=candidate.drop, p50_ms=candidate.p50_ms,
                         size_bytes=candidate.size_bytes)


def test_an_int8_exact_on_every_x86_cpu_ships_when_it_is_as_fast():
    fp32, eight = _c("fp32", "fp32", 0, 1.0, 400), _bits(_c("ma", "int8", 0.2, 0.50, 100), 8)
    within_noise = _bits(_c("ma+7bit", "int8", 0.4, 0.52, 100), 7)
    chosen, reason = choose([fp32, eight, within_noise], PlanRequest(max_drop=0.5, objective="latency"), latency_measured=True)
    assert chosen == "ma+7bit" and "exact on every x86 CPU without session options" in reason
    slower = _bits(_c("ma+7bit", "int8", 0.4, 0.60, 100), 7)  # 20% slower: speed wins
    assert choose([fp32, eight, slower], PlanRequest(max_drop=0.5, objective="latency"), latency_measured=True)[0] == "ma"
    too_lossy = _bits(_c("ma+7bit", "int8", 0.8, 0.50, 100), 7)  # outside the accuracy budget
    assert choose([fp32, eight, too_lossy], PlanRequest(max_drop=0.5, objective="latency"), latency_measured=True)[0] == "ma"
