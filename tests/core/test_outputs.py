"""edgekit.core.outputs: what may be replaced, atomic publication, races between processes, leftovers of
killed runs. The CLI-level versions of these (build/prune/train/search) are in tests/cli/test_cli_safety.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from edgekit.core.errors import EdgekitError
from edgekit.core.outputs import (atomic_folder, owned_by, plan_output_file, plan_output_folder,
                                  scratch_folder, sweep_leftovers, write_planned_file)
from edgekit.core.processes import process_tag

SCHEMA = "edgekit.test/1"
OWNER = owned_by(SCHEMA)


def _write_owned(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    listed = {name: {"sha256": "0" * 64, "bytes": 0} for name in files}
    (folder / "manifest.json").write_text(json.dumps({"schema": SCHEMA, "files": listed}))


def _publish(destination: Path, *, force: bool = False, text: str = "new") -> None:
    plan = plan_output_folder(destination, force=force, owner=OWNER)
    with atomic_folder(plan) as staging:
        _write_owned(staging, {"model.bin": text})


def test_publishes_into_a_new_folder_and_leaves_no_staging(tmp_path):
    _publish(tmp_path / "out")
    assert (tmp_path / "out" / "model.bin").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_existing_folder_needs_force_and_is_replaced_only_when_edgekit_wrote_it(tmp_path):
    out = tmp_path / "out"
    _write_owned(out, {"model.bin": "old"})
    with pytest.raises(EdgekitError, match="already exists"):
        _publish(out)
    _publish(out, force=True)
    assert (out / "model.bin").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no .out.old beside it


@pytest.mark.parametrize("make_foreign", [
    lambda out: (out / "notes.txt").write_text("a user's file"),  # no manifest at all
    lambda out: _write_owned(out, {"model.bin": "old"}) or (out / "mine.txt").write_text("added later"),
    lambda out: (out / "manifest.json").write_text(json.dumps({"schema": "someone.else/1", "files": {}})),
    lambda out: (out / "manifest.json").write_text("[1, 2]"),
])
def test_force_refuses_folders_edgekit_did_not_write_and_keeps_them(tmp_path, make_foreign):
    out = tmp_path / "out"
    out.mkdir()
    make_foreign(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(EdgekitError, match="replaces only a folder edgekit wrote"):
        _publish(out, force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_an_empty_existing_folder_is_taken_over(tmp_path):
    (tmp_path / "out").mkdir()
    _publish(tmp_path / "out")
    assert (tmp_path / "out" / "model.bin").is_file()


def test_output_that_is_a_file_is_refused_even_with_force(tmp_path):
    target = tmp_path / "out"
    target.write_text("precious")
    with pytest.raises(EdgekitError, match="is a file"):
        _publish(target, force=True)
    assert target.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("relation", ["equal", "contains", "inside"])
def test_output_may_not_overlap_an_input(tmp_path, relation):
    calib = tmp_path / "calib"
    (calib / "cat").mkdir(parents=True)
    (calib / "cat" / "a.png").write_bytes(b"x")
    out = {"equal": calib, "contains": tmp_path, "inside": calib / "cat" / "out"}[relation]
    with pytest.raises(EdgekitError, match="calibration"):
        plan_output_folder(out, force=True, owner=OWNER, inputs={"calibration folder": calib})
    assert (calib / "cat" / "a.png").read_bytes() == b"x"


def test_output_may_not_be_or_contain_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for out in (".", "..", str(tmp_path)):
        with pytest.raises(EdgekitError, match="current folder"):
            plan_output_folder(out, force=True, owner=OWNER)


def test_output_under_a_file_or_read_only_folder_is_refused_before_work(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(EdgekitError, match="is a file, not a folder"):
        plan_output_folder(tmp_path / "afile" / "out", force=False, owner=OWNER)


def test_failure_inside_the_block_leaves_nothing(tmp_path):
    plan = plan_output_folder(tmp_path / "new" / "deeper" / "out", force=False, owner=OWNER)
    with pytest.raises(RuntimeError):
        with atomic_folder(plan) as staging:
            (staging / "half.bin").write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []  # the parents it created are gone too


def test_a_folder_created_meanwhile_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    plan = plan_output_folder(out, force=False, owner=OWNER)
    with pytest.raises(EdgekitError, match="changed while this run was working"):
        with atomic_folder(plan) as staging:
            _write_owned(staging, {"model.bin": "mine"})
            out.mkdir()
            (out / "theirs.txt").write_text("someone else's")
    assert sorted(p.name for p in out.iterdir()) == ["theirs.txt"]


def test_force_refuses_when_the_old_folder_gains_a_user_file_meanwhile(tmp_path):
    out = tmp_path / "out"
    _write_owned(out, {"model.bin": "old"})
    plan = plan_output_folder(out, force=True, owner=OWNER)
    with pytest.raises(EdgekitError, match="changed while this run was working"):
        with atomic_folder(plan) as staging:
            _write_owned(staging, {"model.bin": "new"})
            (out / "notes.txt").write_text("added during the build")
    assert (out / "notes.txt").read_text() == "added during the build"
    assert (out / "model.bin").read_text() == "old"


RACER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[4])
    from tests.core.test_outputs import OWNER, _write_owned
    from edgekit.core.errors import EdgekitError
    from edgekit.core.outputs import atomic_folder, plan_output_folder
    out, me, other = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    try:
        plan = plan_output_folder(out, force=False, owner=OWNER)
        with atomic_folder(plan) as staging:
            _write_owned(staging, {"model.bin": me})
            (out.parent / f"ready-{me}").touch()
            while not (out.parent / f"ready-{other}").exists():  # both have planned and staged
                time.sleep(0.01)
    except EdgekitError as error:
        print(f"error: {error.one_line()}", file=sys.stderr)
        sys.exit(1)
""")


def test_two_processes_racing_for_one_output_exactly_one_wins(tmp_path):
    out = tmp_path / "race" / "out"
    out.parent.mkdir()
    root = str(Path(__file__).resolve().parents[2])
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(out), me, other, root], stderr=subprocess.PIPE,
                               text=True) for me, other in (("a", "b"), ("b", "a"))]
    results = [(racer.wait(timeout=120), racer.stderr.read()) for racer in racers]
    assert sorted(code for code, _ in results) == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert loser.strip().count("\n") == 0 and "changed while this run was working" in loser
    winner = next(name for (code, _), name in zip(results, "ab") if code == 0)
    assert (out / "model.bin").read_text() == winner
    assert sorted(p.name for p in out.parent.iterdir()) == ["out", "ready-a", "ready-b"]


def test_leftovers_of_dead_processes_are_swept_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.2)
        dead_dir = tmp_path / f".out.{dead_pid}-1.abcd.partial"
        live_dir = tmp_path / f".out.{process_tag(sleeper.pid)}.efgh.partial"
        reused_pid = tmp_path / f".out.{sleeper.pid}-1.ijkl.partial"  # live pid, other start time: a dead owner
        other_name = tmp_path / f".other.{dead_pid}-1.mnop.partial"
        user_dir = tmp_path / ".out.backup.partial"
        for folder in (dead_dir, live_dir, reused_pid, other_name, user_dir):
            folder.mkdir()
        sweep_leftovers(tmp_path, "out")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [live_dir.name, other_name.name, user_dir.name])
    finally:
        sleeper.kill()
        sleeper.wait()


def test_scratch_folders_of_dead_processes_are_swept(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    stale = tmp_path / "edgekit-bench.999999-1.abc"
    stale.mkdir()
    with scratch_folder("bench") as folder:
        assert folder.parent == tmp_path and folder.is_dir()
        assert not stale.exists()
    assert not folder.exists()


def test_report_files_never_replace_a_users_file(tmp_path):
    mine = tmp_path / "r.json"
    mine.write_text("a user's notes")
    with pytest.raises(EdgekitError, match="edgekit did not write it"):
        plan_output_file(mine, option="--json", recognise=lambda p: False)
    assert mine.read_text() == "a user's notes"
    with pytest.raises(EdgekitError, match="inside the artifact"):
        plan_output_file(tmp_path / "art" / "manifest.json", option="--json", recognise=lambda p: True,
                         forbidden={"artifact": tmp_path / "art"})
    with pytest.raises(EdgekitError, match="does not exist"):
        plan_output_file(tmp_path / "missing" / "r.json", option="--json", recognise=lambda p: True)
    plan = plan_output_file(tmp_path / "new.json", option="--json", recognise=lambda p: False)
    write_planned_file(plan, "{}\n")
    assert (tmp_path / "new.json").read_text() == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.json", "r.json"]


def test_a_symlinked_report_path_is_refused(tmp_path):
    (tmp_path / "real.json").write_text("{}")
    os.symlink(tmp_path / "real.json", tmp_path / "link.json")
    with pytest.raises(EdgekitError, match="did not write it"):
        plan_output_file(tmp_path / "link.json", option="--json", recognise=lambda p: True)
