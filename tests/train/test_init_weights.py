"""--init-weights: a run that starts from trained weights (fresh optimiser and schedule), checked up front."""

import hashlib
import json

import torch

from tests.train.conftest import max_difference, run_cli, weights

ARGS = ("--model", "small_cnn", "--batch-size", "32", "--threads", "1", "--preset", "sgd-onecycle")


def _parameters(state: dict) -> dict:
    # BatchNorm's running statistics move with any forward pass in training mode, whatever the lr.
    return {k: v for k, v in state.items() if "running" not in k and "num_batches" not in k}


def test_a_run_starts_from_the_given_weights_and_records_them(pattern_data, tmp_path):
    data = ("--data", pattern_data["train"], "--val-data", pattern_data["val"])
    code, output = run_cli(*ARGS, *data, "--epochs", "2", "--lr", "0.05", "--out", tmp_path / "first")
    assert code == 0, output
    trained = tmp_path / "first" / "best.pt"

    # An lr this small leaves the weights where they started: the second run's start is visible in its end.
    tiny = ("--epochs", "2", "--lr", "1e-7")
    code, output = run_cli(*ARGS, *data, *tiny, "--init-weights", trained, "--out", tmp_path / "second")
    assert code == 0, output
    code, output = run_cli(*ARGS, *data, *tiny, "--out", tmp_path / "fresh")
    assert code == 0, output
    start = _parameters(weights(trained))
    assert max_difference(start, _parameters(weights(tmp_path / "second" / "last.pt"))) < 1e-3
    assert max_difference(start, _parameters(weights(tmp_path / "fresh" / "last.pt"))) > 1e-2

    record = json.loads((tmp_path / "second" / "config.json").read_text())["init_weights"]
    assert record == {"file": str(trained), "sha256": hashlib.sha256(trained.read_bytes()).hexdigest()}
    second = json.loads((tmp_path / "second" / "log.json").read_text())[0]["val_accuracy"]
    fresh = json.loads((tmp_path / "fresh" / "log.json").read_text())[0]["val_accuracy"]
    assert second > fresh


def test_unusable_init_weights_stop_the_run_before_any_work(pattern_data, tmp_path):
    data = ("--data", pattern_data["train"], "--val-data", pattern_data["val"], "--epochs", "2")
    out = tmp_path / "run"
    code, output = run_cli(*ARGS, *data, "--init-weights", tmp_path / "missing.pt", "--out", out)
    assert code != 0 and "--init-weights: weights file" in output and "does not exist" in output, output
    other = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(3, 3)}, other)
    code, output = run_cli(*ARGS, *data, "--init-weights", other, "--out", out)
    assert code != 0 and "--init-weights: weights" in output and "do not fit the model" in output, output
    assert len(output.strip().splitlines()) == 1, output
    assert not (out / "last.pt").exists() and not (out / "config.json").exists()
