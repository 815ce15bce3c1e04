"""The SSH options shared by `bench --host` and `targets --probe --host`."""

from __future__ import annotations

import functools

import click

from edgekit.remote.ssh import Board


def board_options(command):
    """Adds --host and friends; the wrapped command receives `board` (None without --host)."""

    @click.option("--host", "address", help="Run on a board over SSH: user@board (or a ~/.ssh/config alias).")
    @click.option("--port", type=int, help="SSH port [default: 22 or ~/.ssh/config].")
    @click.option("--identity", type=click.Path(), help="Private key file [default: ssh-agent, ~/.ssh/id_*].")
    @click.option("--known-hosts", type=click.Path(), help="known_hosts file [default: ~/.ssh/known_hosts].")
    @click.option("--trust-new-host", is_flag=True,
                  help="Accept and record the board's host key if it is not in known_hosts yet.")
    @click.option("--remote-python", default="python3", show_default=True, help="Python interpreter on the board.")
    @functools.wraps(command)
    def wrapper(*args, address, port, identity, known_hosts, trust_new_host, remote_python, **kwargs):
        board = None
        if address:
            board = Board.parse(address, port=port, identity=identity, known_hosts=known_hosts,
                                trust_new_host=trust_new_host, python=remote_python)
        elif port or identity or known_hosts or trust_new_host:
            raise click.UsageError("--port/--identity/--known-hosts/--trust-new-host need --host")
        return command(*args, board=board, **kwargs)

    return wrapper
