import csv
import json

import torch

from edgekit.models import build_model
from edgekit.models.checkpoint import read_checkpoint
from edgekit.models.weights import save_checkpoint
from tests.train.conftest import run_cli

COMMON = ("--model", "tiny_cnn", "--batch-size", "16", "--lr", "0.05", "--threads", "2")


def _train(pattern_data, out, *extra):
    return run_cli(*COMMON, "--data", pattern_data["train"], "--val-data", pattern_data["val"], "--out", out, *extra)


def test_train_learns_and_writes_checkpoints_and_logs(pattern_data, tmp_path):
    status, output = _train(pattern_data, tmp_path / "run", "--epochs", "8")
    assert status == 0, output
    history = json.loads((tmp_path / "run" / "log.json").read_text())
    assert [record["epoch"] for record in history] == list(range(1, 9))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert max(record["val_accuracy"] for record in history) > 0.8  # 4 classes: chance is 0.25
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert len(rows) == 8 and float(rows[3]["val_accuracy"]) == history[3]["val_accuracy"]
    best = read_checkpoint(tmp_path / "run" / "best.pt")
    model = build_model(best.config)
    model.load_state_dict(best.state_dict)
    assert best.config.num_classes == 4 and best.preprocessing["input_size"] == [32, 32]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["world_size"] == 1 and config["recipe"]["name"] == "sgd-onecycle"
    assert config["data"]["train_images"] == 320 and config["data"]["val_images"] == 100


def test_best_checkpoint_builds_an_artifact(pattern_data, tmp_path):
    from click.testing import CliRunner

    from edgekit.cli.commands import cli

    assert _train(pattern_data, tmp_path / "run", "--epochs", "2")[0] == 0
    result = CliRunner().invoke(cli, ["build", "-m", "tiny_cnn", "-t", "cpu", "--weights", str(tmp_path / "run/best.pt"),
                                      "--fp32-only", "--out", str(tmp_path / "artifact")])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "artifact" / "manifest.json").read_text())
    assert manifest["model"]["config"]["num_classes"] == 4


def test_a_finished_run_is_not_overwritten_without_resume_or_force(pattern_data, tmp_path):
    assert _train(pattern_data, tmp_path / "run", "--epochs", "1")[0] == 0
    status, output = _train(pattern_data, tmp_path / "run", "--epochs", "1")
    assert status == 1 and output.startswith("error:") and "--resume" in output and output.count("\n") == 1
    assert _train(pattern_data, tmp_path / "run", "--epochs", "1", "--force")[0] == 0


def test_resume_refuses_missing_corrupt_and_foreign_checkpoints(pattern_data, tmp_path):
    out = tmp_path / "run"
    status, output = _train(pattern_data, out, "--epochs", "1", "--resume")
    assert status == 1 and "nothing to resume" in output

    assert _train(pattern_data, out, "--epochs", "1")[0] == 0
    last = out / "last.pt"
    original = last.read_bytes()

    last.write_bytes(original[: len(original) // 2])  # a truncated file
    status, output = _train(pattern_data, out, "--epochs", "2", "--resume")
    assert status == 1 and output.startswith("error: cannot load") and output.count("\n") == 1

    torch.save(build_model(read_checkpoint(out / "best.pt").config).state_dict(), last)  # a bare state_dict
    status, output = _train(pattern_data, out, "--epochs", "2", "--resume")
    assert status == 1 and "not an edgekit checkpoint" in output

    last.write_bytes((out / "best.pt").read_bytes())  # weights without training state
    status, output = _train(pattern_data, out, "--epochs", "2", "--resume")
    assert status == 1 and "no training state" in output

    last.write_bytes(original)
    status, output = _train(pattern_data, out, "--epochs", "2", "--resume", "--option", "batchnorm=false")
    assert status == 1 and "was trained as" in output
    status, output = _train(pattern_data, out, "--epochs", "2", "--resume", "--lr", "0.1")
    assert status == 1 and "different run" in output and "recipe" in output


def test_a_pickled_object_in_a_checkpoint_is_refused(pattern_data, tmp_path):
    out = tmp_path / "run"
    assert _train(pattern_data, out, "--epochs", "1")[0] == 0
    checkpoint = read_checkpoint(out / "last.pt")
    save_checkpoint(out / "last.pt", checkpoint.config, checkpoint.state_dict, training=object())
    status, output = _train(pattern_data, out, "--epochs", "2", "--resume")
    assert status == 1 and "weights_only" in output


def test_wrong_class_count_and_sync_bn_on_cpu_are_one_line_errors(pattern_data, tmp_path):
    status, output = _train(pattern_data, tmp_path / "a", "--epochs", "1", "--num-classes", "7")
    assert status == 1 and "4 classes" in output and "7" in output
    status, output = _train(pattern_data, tmp_path / "b", "--epochs", "1", "--sync-bn")
    assert status == 1 and "SyncBatchNorm" in output


def test_bf16_autocast_runs_on_cpu_and_fp16_asks_for_cuda(pattern_data, tmp_path):
    status, output = _train(pattern_data, tmp_path / "bf16", "--epochs", "1", "--amp", "bf16")
    assert status == 0, output
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["amp"] == "bf16"
    weights = read_checkpoint(tmp_path / "bf16" / "last.pt").state_dict
    assert all(t.dtype == torch.float32 for t in weights.values() if t.is_floating_point())  # master weights stay fp32
    status, output = _train(pattern_data, tmp_path / "fp16", "--epochs", "1", "--amp", "fp16")
    assert status == 1 and "--amp fp16 needs a CUDA device" in output
