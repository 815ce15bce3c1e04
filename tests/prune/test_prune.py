import json

import pytest
import torch
from click.testing import CliRunner

from edgekit.cli.commands import cli
from edgekit.models import build_model
from edgekit.models.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def trained_run(pattern_data, tmp_path_factory):
    """tiny_cnn trained by ``edgekit train`` (so the checkpoint records its data split)."""
    out = tmp_path_factory.mktemp("prune") / "run"
    result = CliRunner().invoke(cli, ["train", "--model", "tiny_cnn", "--data", str(pattern_data["train"]), "--out",
                                      str(out), "--epochs", "6", "--batch-size", "16", "--lr", "0.05",
                                      "--val-fraction", "0.2"])
    assert result.exit_code == 0, result.output
    return out / "best.pt"


def _prune(weights, data, out, *args):
    return CliRunner().invoke(cli, ["prune", "--weights", str(weights), "--data", str(data), "--out", str(out),
                                    "--batch-size", "16", *map(str, args)])


def _build(weights, out):
    result = CliRunner().invoke(cli, ["build", "-m", "tiny_cnn", "-t", "cpu", "--weights", str(weights), "--fp32-only",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "manifest.json").read_text())


def test_unstructured_rounds_reach_the_sparsity_and_the_result_builds(trained_run, pattern_data, tmp_path):
    result = _prune(trained_run, pattern_data["train"], tmp_path / "l1", "--method", "l1-unstructured",
                    "--sparsity", "0.5", "--amount", "0.2", "--finetune-epochs", "2", "--lr", "0.01")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "l1" / "prune_report.json").read_text())
    rounds = report["rounds"]
    assert [r["stage"] for r in rounds] == ["parent", "round 1", "round 2", "round 3", "round 4"]
    for index, row in enumerate(rounds):
        assert row["conv_sparsity"] == pytest.approx(1 - 0.8**index, abs=0.01)  # 20% of the remaining per round
    assert report["summary"]["val_fraction"] == 0.2  # the training run's split, read from its checkpoint
    assert rounds[-1]["val_accuracy"] > 0.5
    pruned = read_checkpoint(tmp_path / "l1" / "pruned.pt")
    model = build_model(pruned.config)
    model.load_state_dict(pruned.state_dict)  # plain keys: the masks were made permanent
    conv = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, torch.nn.Conv2d)])
    assert (conv == 0).float().mean().item() == pytest.approx(rounds[-1]["conv_sparsity"], abs=1e-6)
    _build(tmp_path / "l1" / "pruned.pt", tmp_path / "artifact")


def test_channel_pruning_makes_a_smaller_network_that_builds_with_parity(trained_run, pattern_data, tmp_path):
    result = _prune(trained_run, pattern_data["train"], tmp_path / "ch", "--method", "channels", "--sparsity", "0.5",
                    "--finetune-epochs", "3", "--lr", "0.02")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "ch" / "prune_report.json").read_text())["summary"]
    assert summary["params_after"] < 0.5 * summary["params_before"]
    parent = _build(trained_run, tmp_path / "parent")
    child = _build(tmp_path / "ch" / "pruned.pt", tmp_path / "child")
    assert child["model"]["weights"]["channel_pruned"] is True
    assert child["export"]["parity"]["max_normalised_diff"] < 1e-4
    assert child["files"]["model_fp32.onnx"]["bytes"] < 0.6 * parent["files"]["model_fp32.onnx"]["bytes"]


def test_bad_inputs_are_one_line_errors_and_leave_no_folder(trained_run, pattern_data, tmp_path):
    bare = tmp_path / "bare.pt"
    torch.save(read_checkpoint(trained_run).state_dict, bare)
    cases = [
        ((bare, pattern_data["train"], tmp_path / "a", "--sparsity", "0.5"), "bare state_dict"),
        ((trained_run, pattern_data["train"], tmp_path / "b", "--sparsity", "50"), "'--sparsity': 50.0 is not in"),
        ((trained_run, tmp_path / "missing", tmp_path / "c", "--sparsity", "0.5"), "does not exist"),
    ]
    for args, message in cases:
        result = _prune(*args)
        # 1 for edgekit's own checks, 2 (Click's convention) for an option out of its range
        assert result.exit_code in (1, 2) and result.output.startswith("error:") and message in result.output, \
            result.output
        assert not args[2].exists()
