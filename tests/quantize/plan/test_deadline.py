"""A plan step that outruns the budget is stopped, not waited for."""

import time

import pytest

from edgekit.core.errors import EdgekitError
from edgekit.quantize.plan.deadline import BudgetSpent, call_within


def _slow(seconds):
    time.sleep(seconds)
    return "late"


def _refuse(message):
    raise EdgekitError(message)


def test_a_step_within_the_budget_returns_its_result():
    assert call_within(divmod, (7, 2), 30, "division") == (3, 1)


def test_a_step_past_the_budget_is_stopped_at_it():
    started = time.monotonic()
    with pytest.raises(BudgetSpent, match="entropy calibration stopped after"):
        call_within(_slow, (60,), 2, "entropy calibration")
    assert time.monotonic() - started < 30  # stopped at ~2 s (+ the child's start), never the full 60 s


def test_a_failing_step_raises_its_own_error_here():
    with pytest.raises(EdgekitError, match="bad ranges"):
        call_within(_refuse, ("bad ranges",), 30, "calibration")


def test_no_budget_left_starts_nothing():
    with pytest.raises(BudgetSpent, match="no budget left"):
        call_within(_slow, (60,), 0, "percentile calibration")


def test_a_stopped_candidate_is_recorded_and_never_ships(tmp_path):
    import numpy as np

    from edgekit.quantize.plan.choice import choose
    from edgekit.quantize.plan.request import PlanRequest
    from edgekit.quantize.plan.trials import Trials

    truth = np.array([0, 1, 1, 0])
    logits = np.eye(2)[truth]
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    trials = Trials(judge=np.zeros((4, 1)), truth=truth, baseline=100.0, logits=lambda path, kernels: logits,
                    latency=None, max_drop=1, budget_seconds=5)
    trials.measure("fp32", "fp32", {}, lambda: model)

    def entropy():
        return call_within(_slow, (60,), trials.seconds_left(), "entropy calibration")

    candidate = trials.measure("entropy", "int8", {}, entropy)
    assert candidate.status.startswith("stopped: entropy calibration stopped after")
    assert trials.spent < 30
    assert choose(trials.candidates, PlanRequest(max_drop=1, objective="size"), latency_measured=False)[0] == "fp32"
