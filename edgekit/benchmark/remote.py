"""`edgekit bench DIR --host user@board`: copy the artifact and the board runner, measure there.

Only the ONNX Runtime models travel (the runner needs nothing but python3, numpy and onnxruntime);
the board's own description comes back with the numbers, so the table says where they were taken.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.artifact.manifest import ArtifactManifest
from edgekit.core.errors import EdgekitError
from edgekit.core.progress import progress, say, warn
from edgekit.runtimes.remote.runner import runner_json, start_runner
from edgekit.runtimes.remote.ssh import Board, Connection, connect
from edgekit.targets.isa import describe_host


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
            runner, info = start_runner(connection, board, remote)
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

            report = runner_json(connection, *connection.run(command, on_stderr_line=relay), what=board.python)
        finally:
            connection.remove_dir(remote)
    return host, report["results"]
