"""`edgekit bench DIR --host user@board`: copy the artifact and the board runner, measure there.

Only the ONNX Runtime models travel (the runner needs nothing but python3, numpy and onnxruntime);
the board's own description comes back with the numbers, so the table says where they were taken.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgekit.artifact.manifest import ArtifactManifest
from edgekit.core.errors import EdgekitError
from edgekit.core.progress import progress, say, warn
from edgekit.runtimes.remote.ssh import Board, Connection, connect
from edgekit.targets.isa import describe_host

RUNNER = Path(__file__).resolve().parents[1] / "runtimes" / "board_runner.py"
RUNNER_MISSING_DEPENDENCY = 3  # board_runner.MISSING_DEPENDENCY, kept literal: the runner is a script


def _runner_json(connection: Connection, code: int, out: str, err: str, what: str) -> dict:
    if code == 127:
        raise EdgekitError(f"{connection.label}: no {what} interpreter on the board ({err.strip()[-200:]})")
    if code == RUNNER_MISSING_DEPENDENCY:
        raise EdgekitError(f"{connection.label}: {err.strip().removeprefix('error: ')}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        last = (err.strip().splitlines() or ["no output"])[-1]
        raise EdgekitError(f"{connection.label}: the board runner failed (exit {code}): {last[:300]}")
    return json.loads(lines[-1])


def _upload(connection: Connection, remote_dir: str, files: list[tuple[Path, str]]) -> None:
    total = sum(local.stat().st_size for local, _ in files)
    made = {remote_dir}
    with progress(f"copying {total / 1e6:.1f} MB to {connection.label}", total) as advance:
        for local, relative in files:
            parent = remote_dir
            for part in Path(relative).parent.parts:
                parent = f"{parent}/{part}"
                if parent not in made:
                    connection.mkdir(parent)
                    made.add(parent)
            sent = [0]

            def moved(done: int, _total: int, sent=sent) -> None:
                advance(done - sent[0])
                sent[0] = done

            connection.put(local, f"{remote_dir}/{relative}", progress=moved)


def _artifact_files(folder: Path, manifest: ArtifactManifest) -> tuple[list[str], list[str]]:
    """Relative names of what the runner needs, and the models it cannot run."""
    names, skipped = ["manifest.json"], []
    for entry in manifest.models:
        if entry.runtime != "onnxruntime":
            skipped.append(entry.file)
            continue
        for name in entry.names:
            path = (folder / name).resolve()
            if Path(name).is_absolute() or ".." in Path(name).parts or not path.is_file():
                raise EdgekitError(f"manifest names {name!r}, which is not a file inside {folder}")
            names.append(name)
    if len(names) == 1:
        raise EdgekitError(f"{folder} has no ONNX Runtime models; the board runner runs only those "
                           "(build for rpi4 or cpu)")
    return names, skipped


def measure_on_board(board: Board, folder: Path, manifest: ArtifactManifest, *, threads: int, runs: int, warmup: int,
                     data_path: Path | None) -> tuple[dict, list[dict]]:
    names, skipped = _artifact_files(folder, manifest)
    if skipped:
        warn(f"not run on the board (not ONNX Runtime models): {', '.join(skipped)}")
    with connect(board) as connection:
        say(f"connected to {connection.label}")
        remote = connection.make_scratch_dir()
        try:
            connection.put(RUNNER, f"{remote}/board_runner.py")
            runner = [board.python, f"{remote}/board_runner.py"]
            info = _runner_json(connection, *connection.run([*runner, "info"], timeout=120), what=board.python)
            for module in ("numpy", "onnxruntime"):
                if info.get(module) is None:
                    raise EdgekitError(f"{connection.label}: {module} is not installed for {board.python} on the "
                                       f"board; install it there (pip install {module})")
            host = describe_host(info, board=connection.label)
            say(f"board: {host['cpu']}, {host['arch']}, {host['os']}, onnxruntime {host['onnxruntime']}")
            files = [(folder / name, f"artifact/{name}") for name in names]
            if data_path is not None:
                files.append((data_path, "eval.npy"))
            _upload(connection, remote, files)
            command = [*runner, "bench", f"{remote}/artifact", "--runs", str(runs), "--warmup", str(warmup),
                       "--threads", str(threads)]
            if data_path is not None:
                command += ["--data", f"{remote}/eval.npy"]

            def relay(line: str) -> None:
                if line.startswith("board_runner: "):
                    say(f"{connection.label}: {line.removeprefix('board_runner: ')}")

            report = _runner_json(connection, *connection.run(command, on_stderr_line=relay), what=board.python)
        finally:
            connection.remove_dir(remote)
    return host, report["results"]
