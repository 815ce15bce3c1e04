"""Helpers for the training tests: the command line in-process or as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from click.testing import CliRunner

from edgekit.cli.commands import cli


def run_cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["train", *map(str, args)])
    return result.exit_code, result.output


def run_process(*args, module: str = "edgekit.train", timeout: int = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, EDGEKIT_NO_PROGRESS="1")
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


def max_difference(first: dict, second: dict) -> float:
    assert first.keys() == second.keys()
    return max((first[k].float() - second[k].float()).abs().max().item() for k in first)
