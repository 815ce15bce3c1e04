"""Board addresses and ~/.ssh/config resolution (no network)."""

from __future__ import annotations

import pytest

from edgekit.core.errors import EdgekitError
from edgekit.runtimes.remote.ssh import Board, resolve


@pytest.mark.parametrize("address, user, host", [("pi@board.local", "pi", "board.local"), ("board", None, "board"),
                                                 ("me@10.0.0.7", "me", "10.0.0.7")])
def test_addresses_split_into_user_and_host(address, user, host):
    board = Board.parse(address)
    assert (board.user, board.host) == (user, host)


@pytest.mark.parametrize("address", ["@board", "pi@", "pi@board; rm -rf /", ""])
def test_malformed_addresses_are_refused(address):
    with pytest.raises(EdgekitError, match="--host must look like"):
        Board.parse(address)


def test_ssh_config_alias_supplies_hostname_user_port_and_key(tmp_path):
    config = tmp_path / "config"
    config.write_text("Host pi\n  HostName 192.168.1.50\n  User alarm\n  Port 2222\n  IdentityFile ~/.ssh/pi_key\n")
    resolved = resolve(Board.parse("pi"), config)
    assert (resolved.hostname, resolved.user, resolved.port) == ("192.168.1.50", "alarm", 2222)
    assert resolved.key_files[0].endswith("/.ssh/pi_key") and not resolved.key_files[0].startswith("~")
    # Command-line options win over the config file.
    explicit = resolve(Board.parse("root@pi", port=22, identity=str(tmp_path / "k")), config)
    assert (explicit.user, explicit.port, explicit.key_files) == ("root", 22, [str(tmp_path / "k")])
