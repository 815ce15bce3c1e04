"""The CLI with your own model: -m torchvision:NAME (offline), --pretrained (cache / no network),
-m my_net.py:build --input-size (build, bench, train), and bad specs as one line before any work."""

import json

import pytest

from ..conftest import publish_fake
from ..models.test_user_module import write_net
from .test_cli import assert_one_line_error, run


def test_a_torchvision_network_builds_offline_at_its_own_size(pattern_data, hub, tmp_path):
    out = tmp_path / "mv3"
    result = run("build", "-m", "torchvision:mobilenet_v3_small", "-t", "cpu", "--calib", pattern_data["train"],
                 "--calib-size", 4, "--no-latency-check", "-o", out)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["preprocessing"]["input_size"] == [224, 224] and manifest["preprocessing"]["resize"] == 256
    assert manifest["model"]["weights"] is None and hub["attempts"] == []


def test_pretrained_without_network_is_one_line_and_leaves_nothing(pattern_data, hub, tmp_path):
    out = tmp_path / "out"
    result = run("build", "-m", "torchvision:shufflenet_v2_x0_5", "-t", "cpu", "--calib", pattern_data["train"],
                 "--pretrained", "-o", out)
    assert_one_line_error(result, f"put shufflenetv2_x0.5-f707e7126e.pth from https://download.pytorch.org/models/"
                                  f"shufflenetv2_x0.5-f707e7126e.pth into {hub['checkpoints']}/")
    assert not out.exists() and len(hub["attempts"]) == 1


def test_pretrained_from_the_cache_with_another_head(pattern_data, hub, monkeypatch, tmp_path):
    fake = publish_fake(hub, monkeypatch)
    out = tmp_path / "art"
    result = run("build", "-m", "torchvision:shufflenet_v2_x0_5", "--pretrained", "IMAGENET1K_V1", "-t", "cpu",
                 "--calib", pattern_data["train"], "--calib-size", 8, "--num-classes", 4, "--input-size", 32,
                 "--no-latency-check", "-o", out)
    assert result.exit_code == 0, result.output
    weights = json.loads((out / "manifest.json").read_text())["model"]["weights"]
    assert weights["pretrained"] == "ShuffleNet_V2_X0_5_Weights.IMAGENET1K_V1" and weights["source"] == "cache"
    assert weights["path"] == str(fake["path"]) and weights["reinitialised_for_num_classes"] == ["fc.bias", "fc.weight"]
    assert hub["attempts"] == []


def test_pretrained_applies_to_published_weights_only(pattern_data, tmp_path):
    for model, fragment in (("tiny_cnn", "has no published weights"),
                            (f"{write_net(tmp_path)}:build", "has no published weights")):
        assert_one_line_error(run("build", "-m", model, "-t", "cpu", "--calib", pattern_data["train"], "--pretrained",
                                  "--input-size", 32, "-o", tmp_path / "out"), fragment)


def test_my_net_builds_and_benches_from_a_relative_path(pattern_data, tmp_path, monkeypatch):
    write_net(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = run("build", "-m", "my_net.py:build", "--input-size", 32, "-t", "cpu", "--calib", pattern_data["train"],
                 "--calib-size", 8, "--num-classes", 4, "--classes", pattern_data["train"], "--no-latency-check")
    assert result.exit_code == 0, result.output
    out = tmp_path / "artifacts" / "my_net-build-cpu"
    assert json.loads((out / "manifest.json").read_text())["model"]["config"]["name"] == "my_net.py:build"
    result = run("bench", out, "--data", pattern_data["val"], "--limit", 8, "--runs", 3, "--warmup", 1)
    assert result.exit_code == 0 and "model_fp32.pt" in result.output, result.output


@pytest.mark.parametrize("spec,extra,fragment", [
    ("{dir}/my_net.py:build", [], "has no default input size: pass --input-size"),
    ("{dir}/my_net.py:nope", ["--input-size", "32"], "has no function 'nope'"),
    ("{dir}/my_net.py:returns_nothing", ["--input-size", "32"], "returned a NoneType, not a torch.nn.Module"),
    ("{dir}/broken.py:build", ["--input-size", "32"], "broken.py failed (SyntaxError"),
    ("{dir}/missing.py:build", ["--input-size", "32"], "missing.py does not exist"),
    ("torchvision:vit_b_16", [], "torchvision:vit_b_16 is not supported: a vision transformer"),
    ("torchvision:vgg11", ["--input-size", "64"], "takes 224 px input only"),
])
def test_a_bad_model_is_one_line_naming_it_and_leaves_no_output(pattern_data, tmp_path, spec, extra, fragment):
    write_net(tmp_path)
    (tmp_path / "broken.py").write_text("def build(:\n")
    out = tmp_path / "out"
    result = run("build", "-m", spec.format(dir=tmp_path), "-t", "cpu", "--calib", pattern_data["train"], *extra,
                 "-o", out)
    assert_one_line_error(result, fragment)
    assert spec.format(dir=tmp_path) in result.output and not out.exists()


def test_train_takes_a_user_module_too(pattern_data, tmp_path):
    path = write_net(tmp_path)
    run_folder = tmp_path / "run"
    result = run("train", "-m", f"{path}:build", "--input-size", 16, "--data", pattern_data["train"], "--out", run_folder,
                 "--preset", "adamw-onecycle", "--epochs", 1, "--subset", 32, "--batch-size", 4)
    assert result.exit_code == 0, result.output
    out = tmp_path / "art"
    result = run("build", "-m", f"{path}:build", "--weights", run_folder / "best.pt", "-t", "cpu", "--fp32-only",
                 "--no-latency-check", "-o", out)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "manifest.json").read_text())["model"]["config"]
    assert (config["input_size"], config["num_classes"]) == (16, 4)
