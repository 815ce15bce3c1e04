"""DDP on CPU (gloo): two processes must take the same optimiser steps as one with the same global batch.

The network has no BatchNorm: under DDP each process normalises with its own half-batch statistics
(SyncBatchNorm is GPU-only), which legitimately changes the result. What remains is float summation
order in the gradient all-reduce, so the weights may differ by rounding only: we allow 1e-5 absolute
after 40 SGD steps (observed ~1e-7), against weight changes of order 1e-1.
"""

import json

import pytest

from tests.train.conftest import max_difference, run_cli, run_process, weights

TOLERANCE = 1e-5
ARGS = ("--model", "tiny_cnn", "--option", "batchnorm=false", "--epochs", "2", "--batch-size", "16",
        "--lr", "0.05", "--seed", "7")


@pytest.fixture(scope="module")
def single_process_run(pattern_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "one"
    result = run_process(*ARGS, "--data", pattern_data["train"], "--out", out, "--threads", "2")
    assert result.returncode == 0, result.stderr
    return out


def _initial_weights(pattern_data):
    import torch

    from edgekit.models import build_model, default_config

    torch.manual_seed(7)
    return build_model(default_config("tiny_cnn", num_classes=4, options={"batchnorm": False})).state_dict()


def test_two_gloo_processes_match_one_process(pattern_data, single_process_run, tmp_path):
    status, output = run_cli(*ARGS, "--data", pattern_data["train"], "--out", tmp_path / "two", "--nproc", "2")
    assert status == 0, output
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert (config["world_size"], config["backend"], config["per_process_batch"]) == (2, "gloo", 8)
    one, two = weights(single_process_run / "last.pt"), weights(tmp_path / "two" / "last.pt")
    assert max_difference(one, two) < TOLERANCE
    assert max_difference(one, _initial_weights(pattern_data)) > 100 * TOLERANCE  # training did move them
    # Metrics are reduced over ranks: the logs agree too.
    log_one = json.loads((single_process_run / "log.json").read_text())
    log_two = json.loads((tmp_path / "two" / "log.json").read_text())
    assert [r["val_accuracy"] for r in log_one] == [r["val_accuracy"] for r in log_two]
    assert [r["train_images"] for r in log_one] == [r["train_images"] for r in log_two]


def test_torchrun_runs_the_module_directly(pattern_data, single_process_run, tmp_path):
    result = run_process("--standalone", "--nproc-per-node", "2", "-m", "edgekit.train", *ARGS,
                         "--data", pattern_data["train"], "--out", tmp_path / "direct",
                         module="torch.distributed.run")
    assert result.returncode == 0, result.stderr
    assert max_difference(weights(single_process_run / "last.pt"), weights(tmp_path / "direct" / "last.pt")) < TOLERANCE


def test_a_global_batch_that_does_not_split_evenly_fails_before_launching(pattern_data, tmp_path):
    status, output = run_cli(*ARGS[:-4], "--batch-size", "15", "--data", pattern_data["train"],
                             "--out", tmp_path / "odd", "--nproc", "2")
    assert status == 1 and output.startswith("error:") and "divide evenly over 2" in output
    assert not (tmp_path / "odd").exists()


def test_logged_validation_of_a_ddp_run_is_the_checkpoint_s_accuracy(pattern_data, tmp_path):
    """With BatchNorm, ranks' running statistics drift apart during an epoch; validation must use rank 0's."""
    from edgekit.models import build_model
    from edgekit.models.checkpoint import read_checkpoint
    from edgekit.train.data import load_training_data
    from edgekit.train.epochs import evaluate
    from edgekit.data.preprocessing import Preprocessing

    args = ("--model", "tiny_cnn", "--epochs", "2", "--batch-size", "16", "--lr", "0.05", "--val-fraction", "0.3")
    status, output = run_cli(*args, "--data", pattern_data["train"], "--out", tmp_path / "bn", "--nproc", "2")
    assert status == 0, output
    checkpoint = read_checkpoint(tmp_path / "bn" / "last.pt")
    model = build_model(checkpoint.config)
    model.load_state_dict(checkpoint.state_dict)
    data = load_training_data(str(pattern_data["train"]), Preprocessing.from_dict(checkpoint.preprocessing),
                              val_fraction=0.3, seed=0, verbose=False)
    measured = evaluate(model, data.val)
    logged = json.loads((tmp_path / "bn" / "log.json").read_text())[-1]
    assert measured["val_accuracy"] == logged["val_accuracy"]
    assert abs(measured["val_loss"] - logged["val_loss"]) < 1e-4
