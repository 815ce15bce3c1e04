"""Where candidates train: the local and Ray executors agree, a dead worker is retried without
counting twice, a rerun resumes, and a missing Ray or a wrong address is one line before any work.

The searches are the smallest the two steps allow (100 pattern images, one candidate per step,
epochs of 1, no latency builds: target rpi4); training losses are compared exactly, so a run that
trained anything differently cannot pass as equal even where every accuracy is at chance.
"""

from __future__ import annotations

import socket
import sys

import pytest
from click.testing import CliRunner

from edgekit.cli.commands import cli
from edgekit.search import executors
from edgekit.search.report import table_rows
from edgekit.search.rounds import FAULT_ENV
from edgekit.search.two_step import SearchSettings, run_search
from tests.cli.test_bad_input import assert_error_line

SMALL = dict(grayscale=True, derived=("edges",), root_epochs=1, epochs=1, max_rounds=1, max_candidates=1, max_split=1,
             batch_size=16, target="rpi4")
TRAININGS = 5  # root, step 1 control + one replication, step 2 control + one split


def _distinct(summary) -> int:
    """Trainings with different inputs: with no replication adopted, step 2's control is step 1's
    (same layout, parent, data and budget), trained once."""
    return len({c["key"] for c in summary["candidates"]})


def _runs(summary) -> list:
    return [[(r["seed"], r["val_accuracy"], r["train_loss"]) for r in c["runs"]] for c in summary["candidates"]]


def _stored_results(out) -> int:
    return len(list((out / "work" / "candidates").rglob("s*.json")))


@pytest.fixture
def ray_local():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install edgekit[ray])")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_with_a_dead_worker(pattern_data, tmp_path_factory):
    """Two seeds per candidate in two worker processes; the first training's process dies once."""
    root = tmp_path_factory.mktemp("local")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FAULT_ENV, str(root / "fault"))
        summary = run_search(pattern_data["val"], root / "out", SearchSettings(**SMALL, workers=2, repeats=2))
    assert (root / "fault").exists()  # the fault did happen
    return summary, root / "out"


def test_a_dead_local_worker_is_retried_and_counted_once(local_with_a_dead_worker):
    summary, out = local_with_a_dead_worker
    assert [[seed for seed, *_ in runs] for runs in _runs(summary)] == [[0, 1]] * TRAININGS
    assert _stored_results(out) == 2 * _distinct(summary)
    assert all(c["val_low"] <= c["val_accuracy"] <= c["val_high"] for c in summary["candidates"])


def test_ray_gives_the_local_table_and_survives_a_dead_worker(local_with_a_dead_worker, pattern_data, tmp_path,
                                                              ray_local, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, str(tmp_path / "fault"))
    summary = run_search(pattern_data["val"], tmp_path / "out",
                         SearchSettings(**SMALL, workers=2, repeats=2, executor="ray"))
    assert (tmp_path / "fault").exists()
    local, _ = local_with_a_dead_worker
    assert table_rows(summary) == table_rows(local)
    assert _runs(summary) == _runs(local)  # the same weights: equal training losses, bit for bit
    assert _stored_results(tmp_path / "out") == 2 * _distinct(summary)
    node = ray_local.get_runtime_context().get_node_id()
    assert {r["node"] for c in summary["candidates"] for r in c["runs"]} == {node}


def test_a_ray_task_no_node_can_hold_is_refused(pattern_data, tmp_path, ray_local):
    from edgekit.core.errors import EdgekitError

    with pytest.raises(EdgekitError, match="--gpus-per-candidate 1: no Ray node"):
        run_search(pattern_data["val"], tmp_path / "out", SearchSettings(**SMALL, executor="ray", gpus_per_candidate=1))
    with pytest.raises(EdgekitError, match="--cpus-per-candidate 64: no Ray node has that many CPUs"):
        run_search(pattern_data["val"], tmp_path / "out", SearchSettings(**SMALL, executor="ray", cpus_per_candidate=64))
    assert list(tmp_path.iterdir()) == []  # no output, no store of trainings beside it


class _Interrupted(Exception):
    pass


def test_a_rerun_trains_only_what_is_missing(pattern_data, tmp_path, monkeypatch):
    real, calls = executors.train_candidate, []

    def training(fail_at=None):
        def train(job):
            calls.append(job["config"])
            if len(calls) == fail_at:
                raise _Interrupted
            return real(job)
        return train

    settings = SearchSettings(**{**SMALL, "max_rounds": 0}, workers=1)  # root, then step 2's control and split
    monkeypatch.setattr(executors, "train_candidate", training(fail_at=3))
    with pytest.raises(_Interrupted):
        run_search(pattern_data["val"], tmp_path / "out", settings)
    assert not (tmp_path / "out").exists()  # nothing published...
    calls.clear()
    monkeypatch.setattr(executors, "train_candidate", training())
    first = run_search(pattern_data["val"], tmp_path / "out", settings)  # ...but two trainings kept
    assert len(calls) == _distinct(first) - 2
    calls.clear()
    again = run_search(pattern_data["val"], tmp_path / "out", settings, force=True)
    assert calls == [] and table_rows(again) == table_rows(first) and _runs(again) == _runs(first)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _search_cli(pattern_data, tmp_path, *options):
    return CliRunner().invoke(cli, ["search", "--data", str(pattern_data["val"]), "--out", str(tmp_path / "out"),
                                    *options])


def test_missing_ray_is_one_line_saying_how_to_install(pattern_data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    result = _search_cli(pattern_data, tmp_path, "--executor", "ray")
    assert_error_line(result, "pip install edgekit[ray]")
    assert not (tmp_path / "out").exists()


def test_an_unreachable_ray_address_is_one_line_naming_it(pattern_data, tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install edgekit[ray])")
    address = f"127.0.0.1:{_free_port()}"
    result = _search_cli(pattern_data, tmp_path, "--executor", "ray", "--ray-address", address)
    assert_error_line(result, f"--ray-address {address}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options, fragment", [
    (["--ray-address", "127.0.0.1:6379"], "--ray-address needs --executor ray"),
    (["--gpus-per-candidate", "1"], "--gpus-per-candidate needs --executor ray"),
    (["--executor", "ray", "--ray-address", "nohost"], "--ray-address must be HOST:PORT"),
    (["--repeats", "0"], "--repeats"),
    (["--executor", "spark"], "--executor"),
])
def test_bad_executor_options_are_one_line(pattern_data, tmp_path, options, fragment):
    if "nohost" in options:
        pytest.importorskip("ray", reason="ray is not installed (pip install edgekit[ray])")
    assert_error_line(_search_cli(pattern_data, tmp_path, *options), fragment)
    assert not (tmp_path / "out").exists()
