"""Never delete what edgekit did not write, through the real commands: kills, races, --force, full
disks and read-only folders. (The mechanisms themselves are tested in tests/core/test_outputs.py.)"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.cli.commands import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _build_args(pattern_data, trained_tiny, out, *extra):
    return ["build", "-m", "tiny_cnn", "-t", "cpu", "--weights", trained_tiny["checkpoint"], "--calib",
            pattern_data["train"], "--calib-size", "16", "--no-latency-check", "--out", out, *extra]


def _process(args, tmpdir: Path) -> subprocess.Popen:
    env = dict(os.environ, EDGEKIT_NO_PROGRESS="1", TMPDIR=str(tmpdir))
    return subprocess.Popen([sys.executable, "-m", "edgekit", *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_force_rebuilds_an_edgekit_artifact_but_never_a_users_folder(pattern_data, trained_tiny, tmp_path):
    out = tmp_path / "art"
    assert run(*_build_args(pattern_data, trained_tiny, out)).exit_code == 0
    first = (out / "manifest.json").read_text()
    assert run(*_build_args(pattern_data, trained_tiny, out, "--force")).exit_code == 0
    assert (out / "manifest.json").read_text() != first  # a new build (its "created" time or hashes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]  # no .art.old, no staging folder
    (out / "my-notes.txt").write_text("written by the user into the artifact")
    result = run(*_build_args(pattern_data, trained_tiny, out, "--force"))
    assert result.exit_code == 1 and "my-notes.txt" in result.output
    assert (out / "my-notes.txt").is_file() and (out / "model_int8.onnx").is_file()


def test_a_killed_build_leaves_leftovers_that_the_next_run_sweeps(pattern_data, trained_tiny, tmp_path):
    out, scratch = tmp_path / "work" / "art", tmp_path / "tmp"
    scratch.mkdir()
    out.parent.mkdir()
    build = _process(_build_args(pattern_data, trained_tiny, out), scratch)
    deadline = time.monotonic() + 120
    while not (list(out.parent.glob(".art.*.partial")) and list(scratch.glob("edgekit-build.*"))):
        assert build.poll() is None, build.communicate()
        assert time.monotonic() < deadline, "the build never started its staging folder"
        time.sleep(0.02)
    build.send_signal(signal.SIGKILL)
    build.wait()
    assert list(out.parent.glob(".art.*.partial")) and not out.exists()
    rebuild = _process(_build_args(pattern_data, trained_tiny, out), scratch)
    _, stderr = rebuild.communicate(timeout=300)
    assert rebuild.returncode == 0, stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["art"]
    assert not list(scratch.glob("edgekit-*"))


def test_two_concurrent_builds_to_one_folder_exactly_one_wins(pattern_data, trained_tiny, tmp_path):
    out = tmp_path / "art"
    (tmp_path / "tmp").mkdir()
    builds = [_process(_build_args(pattern_data, trained_tiny, out), tmp_path / "tmp") for _ in range(2)]
    results = [(build.wait(timeout=300), build.communicate()[1]) for build in builds]
    assert sorted(code for code, _ in results) == [0, 1], results
    loser = next(stderr for code, stderr in results if code == 1)
    errors = [line for line in loser.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and ("changed while this run was working" in errors[0] or "already exists" in errors[0])
    assert (out / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "tmp"]


def test_train_force_clears_only_its_own_files(pattern_data, tmp_path):
    run_dir = tmp_path / "run"
    train = ["train", "-m", "tiny_cnn", "--data", pattern_data["train"], "--epochs", "1", "--batch-size", "8",
             "--subset", "128", "--out", run_dir]
    assert run(*train).exit_code == 0
    (run_dir / "notes.txt").write_text("the user's")
    result = run(*train, "--force")
    assert result.exit_code == 0, result.output
    assert (run_dir / "notes.txt").read_text() == "the user's" and (run_dir / "last.pt").is_file()
    user = tmp_path / "mine"
    user.mkdir()
    (user / "best.pt").write_text("a user's own file named like a checkpoint")
    for extra in ([], ["--force"], ["--resume"]):
        result = run(*train[:-1], user, *extra)
        assert result.exit_code == 1 and "edgekit did not write" in result.output, result.output
    assert (user / "best.pt").read_text().startswith("a user's own file")


def test_a_second_training_run_into_a_busy_folder_fails_at_once(tmp_path):
    from edgekit.core.errors import EdgekitError
    from edgekit.core.outputs import exclusive_use

    with exclusive_use(tmp_path, what="edgekit train"):
        with pytest.raises(EdgekitError, match="in use by another edgekit train"):
            with exclusive_use(tmp_path, what="edgekit train"):
                pass


def test_demo_refuses_a_folder_it_did_not_make(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "main.py").write_text("print('mine')")
    for workdir in ("project", "."):
        result = run("demo", "--workdir", workdir)
        assert result.exit_code == 1 and result.output.count("error:") == 1, result.output
    assert sorted(p.name for p in (tmp_path / "project").iterdir()) == ["main.py"]


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounts need root")


@pytest.fixture()
def mount_point(tmp_path):
    point = tmp_path / "mnt"
    point.mkdir()
    yield point
    subprocess.run(["umount", str(point)], check=False, capture_output=True)


@needs_root
def test_a_full_disk_is_one_line_and_leaves_nothing(pattern_data, trained_tiny, mount_point):
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount_point)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    result = run(*_build_args(pattern_data, trained_tiny, mount_point / "art"))
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(errors) == 1 and "no space left" in errors[0], result.output
    assert list(mount_point.iterdir()) == []


@needs_root
def test_a_read_only_folder_is_refused_before_work(pattern_data, trained_tiny, mount_point, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    done = subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(mount_point)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot bind-mount read-only here: {done.stderr.decode().strip()}")
    subprocess.run(["mount", "-o", "remount,ro,bind", str(mount_point)], capture_output=True)
    result = run(*_build_args(pattern_data, trained_tiny, mount_point / "deeper" / "art"))
    assert result.exit_code == 1 and "read-only or no permission" in result.output, result.output
    assert "building" not in result.output
