"""The board runner over SSH: copy it to a board once, ask it what the board is, time model files there.

``bench --host`` uses it for a whole artifact; ``build --host`` keeps one ``BoardTimer`` open for the
build, so the latency check and every int8 plan the planner tries are timed on the board itself.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgekit.core.errors import EdgekitError
from edgekit.core.hashing import sha256_file
from edgekit.runtimes.remote.ssh import Board, Connection, connect

RUNNER = Path(__file__).resolve().parents[1] / "board_runner.py"
RUNNER_MISSING_DEPENDENCY = 3  # board_runner.MISSING_DEPENDENCY, kept literal: the runner is a script
RUNNER_MODULES = ("numpy", "onnxruntime")
# Run by the board's python: qemu user mode makes up /proc/self/stat (state "0" where the kernel writes
# a letter), so a "board" that is an emulator says so (edgekit.core.processes reads it the same way).
EMULATION_PROBE = ("f = open('/proc/self/stat').read().rsplit(')', 1)[-1].split()\n"
                   "print('emulated' if f and not f[0].isalpha() else 'native')")


def runner_json(connection: Connection, code: int, out: str, err: str, what: str) -> dict:
    """The runner's JSON answer, or one line saying what went wrong on the board."""
    if code == 127:
        raise EdgekitError(f"{connection.label}: no {what} interpreter on the board ({err.strip()[-200:]})")
    if code == RUNNER_MISSING_DEPENDENCY:
        raise EdgekitError(f"{connection.label}: {err.strip().removeprefix('error: ')}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        last = (err.strip().splitlines() or ["no output"])[-1]
        raise EdgekitError(f"{connection.label}: the board runner failed (exit {code}): {last[:300]}")
    return json.loads(lines[-1])


def start_runner(connection: Connection, board: Board, remote: str) -> tuple[list[str], dict]:
    """Copy the runner into ``remote``: its command line, and the board's ``info`` (numpy and ORT checked)."""
    connection.put(RUNNER, f"{remote}/board_runner.py")
    runner = [board.python, f"{remote}/board_runner.py"]
    info = runner_json(connection, *connection.run([*runner, "info"], timeout=120), what=board.python)
    for module in RUNNER_MODULES:
        if info.get(module) is None:
            raise EdgekitError(f"{connection.label}: {module} is not installed for {board.python} on the "
                               f"board; install it there (pip install {module})")
    return runner, info


class BoardTimer:
    """One SSH connection for a build: model files go to a scratch folder on the board (once each, by
    content) and are timed there by the runner's ``measure`` (batch 1, warm-up, p50), each in a fresh
    process. The scratch folder is removed on exit."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.label = ""
        self.info: dict = {}
        self._connection: Connection | None = None
        self._context = None
        self._remote = ""
        self._runner: list[str] = []
        self._sent: dict[str, str] = {}  # sha256 -> path on the board
        self.emulated = False  # the board's python runs under qemu user mode: its timings mean nothing

    def __enter__(self) -> BoardTimer:
        self._context = connect(self.board)
        self._connection = self._context.__enter__()
        try:
            self.label = self._connection.label
            self._remote = self._connection.make_scratch_dir()
            self._runner, self.info = start_runner(self._connection, self.board, self._remote)
            code, out, _ = self._connection.run([self.board.python, "-c", EMULATION_PROBE], timeout=120)
            self.emulated = code == 0 and out.strip() == "emulated"
        except BaseException as error:
            self.__exit__(type(error), error, error.__traceback__)
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self._remote:
                self._connection.remove_dir(self._remote)
        finally:
            self._context.__exit__(*exc)

    def p50(self, path: Path, input_shape, *, threads: int, runs: int, warmup: int, max_seconds: float,
            job: dict | None = None) -> float:
        """p50 in ms of the ONNX file ``path`` on the board (``job``: the runner's extra fields, e.g. x86_int8_kernels)."""
        remote = self._send(Path(path))
        request = {**(job or {}), "runtime": "onnxruntime", "model_path": remote, "threads": threads, "runs": runs,
                   "warmup": warmup, "max_seconds": max_seconds, "input_shape": list(input_shape)}
        answer = runner_json(self._connection, *self._connection.run([*self._runner, "measure"], timeout=1800,
                                                                      input_text=json.dumps(request)),
                             what=self.board.python)
        if not answer.get("ok"):
            raise EdgekitError(f"{self.label}: {Path(path).name} failed on the board: {answer.get('error')}")
        return float(answer["latency_ms"]["p50"])

    def _send(self, path: Path) -> str:
        digest = sha256_file(path)
        if digest not in self._sent:
            remote = f"{self._remote}/{digest[:16]}.onnx"
            self._connection.put(path, remote)
            self._sent[digest] = remote
        return self._sent[digest]
