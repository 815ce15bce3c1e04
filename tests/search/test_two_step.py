import json

import pytest

from edgekit.search.report import mark_pareto
from edgekit.search.two_step import Candidate, SearchSettings, run_search


# The searches run on the 100-image pattern set (batches of 16, so that the one-cycle schedule gets
# its steps): what is checked is the search's steps, transfers and files, which the 320-image set
# only made three times slower (five MobileNetV2 trainings).
def test_search_runs_both_steps_and_writes_results(pattern_data, tmp_path):
    settings = SearchSettings(grayscale=True, derived=("edges",), root_epochs=3, epochs=1, max_rounds=1,
                              max_candidates=1, max_split=1, workers=2, batch_size=16, calib_size=16)
    summary = run_search(pattern_data["val"], tmp_path, settings)
    steps = [c["step"] for c in summary["candidates"]]
    assert steps == ["root", "1.1", "1.1", "2", "2"]  # root, control + 1 replication, control + 1 split
    replica = summary["candidates"][2]
    assert replica["config"]["options"]["replications"] and replica["transfer"]["copied"] > 0
    split = summary["candidates"][4]
    assert split["config"]["options"]["split_at"] == 1 and split["config"]["in_channels"] == 2
    for candidate in summary["candidates"]:
        assert 0 <= candidate["val_accuracy"] <= 1 and candidate["params"] > 0 and candidate["macs"] > 0
        assert candidate["int8_p50_ms"] > 0  # measured by the build stage on the cpu target
    assert any(c["pareto"] for c in summary["candidates"])
    best = json.loads((tmp_path / "best_config.json").read_text())
    assert best["candidate"] == summary["best"] and best["preprocessing"]["derived"] == ["edges"]
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "results.csv").read_text().count("\n") == 6


def test_best_checkpoint_builds_with_its_own_preprocessing(pattern_data, tmp_path):
    from edgekit.artifact.folder import read_manifest
    from edgekit.builder.pipeline import BuildOptions, build_artifact

    settings = SearchSettings(grayscale=True, derived=("edges",), root_epochs=1, epochs=1, max_rounds=0,
                              max_split=1, max_candidates=1, workers=1, target="rpi4", batch_size=16)
    run_search(pattern_data["val"], tmp_path / "s", settings)
    out = build_artifact("mobilenet_v2_rs_cifar", "cpu", tmp_path / "a", weights=tmp_path / "s" / "best.pt",
                         options=BuildOptions(calib=pattern_data["train"], calib_size=16, check_latency=False))
    manifest = read_manifest(out).to_dict()
    assert manifest["input"]["shape"] == [1, 2, 32, 32]
    assert manifest["preprocessing"]["derived"] == ["edges"]


def _candidate(name, accuracy, latency):
    return Candidate(id=name, step="1", label=name, config={}, parent=None, val_accuracy=accuracy, int8_p50_ms=latency)


def test_pareto_front_keeps_only_undominated_candidates():
    candidates = [_candidate("fast", 0.80, 1.0), _candidate("accurate", 0.95, 3.0),
                  _candidate("dominated", 0.79, 2.0), _candidate("balanced", 0.90, 2.0)]
    mark_pareto(candidates)
    assert {c.id for c in candidates if c.pareto} == {"fast", "accurate", "balanced"}


def test_latency_objective_needs_a_target_measured_here(pattern_data, tmp_path):
    from edgekit.core.errors import EdgekitError

    with pytest.raises(EdgekitError, match="latency"):
        run_search(pattern_data["train"], tmp_path, SearchSettings(target="rpi4", latency_weight=1.0))
