"""A run killed (SIGKILL) after an epoch and resumed ends with exactly the weights of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import torch

from tests.train.conftest import run_process

ARGS = ("--model", "small_cnn", "--epochs", "3", "--batch-size", "32", "--lr", "0.05", "--threads", "1",
        "--preset", "sgd-onecycle")


def _epochs_logged(out) -> int:
    try:
        return len(json.loads((out / "log.json").read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def test_killed_and_resumed_run_equals_the_uninterrupted_run(pattern_data, tmp_path):
    data = ("--data", pattern_data["train"], "--val-data", pattern_data["val"])
    reference = run_process(*ARGS, *data, "--out", tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "killed"
    env = dict(os.environ, EDGEKIT_NO_PROGRESS="1")
    victim = subprocess.Popen([sys.executable, "-m", "edgekit.train", *map(str, ARGS), *map(str, data), "--out", str(out)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _epochs_logged(out) < 1 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = _epochs_logged(out)
    assert 1 <= killed_at < 3, "the run must be killed after its first epoch and before its last"

    resumed = run_process(*ARGS, *data, "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {out / 'last.pt'} at epoch {killed_at + 1}/3" in " ".join(resumed.stderr.split())

    expected = torch.load(tmp_path / "reference" / "last.pt", weights_only=True)
    actual = torch.load(out / "last.pt", weights_only=True)
    for key, tensor in expected["state_dict"].items():
        assert torch.equal(tensor, actual["state_dict"][key]), key
    assert [r["val_accuracy"] for r in expected["training"]["history"]] == \
        [r["val_accuracy"] for r in actual["training"]["history"]]
    assert len(json.loads((out / "log.json").read_text())) == 3
