from __future__ import annotations

import pytest

from tests.runtimes.remote.sshd import start_sshd


@pytest.fixture(scope="module")
def ssh_board(tmp_path_factory):
    """A loopback board: this machine behind a key-only sshd on a free port."""
    board = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield board
    board.stop()
