"""SSH to a board with paramiko: verified host keys, quoted commands, SFTP for files.

Every remote command is built from an argv list and joined with ``shlex.join``, so artifact paths,
file names and user names reach the board's shell as single words, never as shell syntax.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgekit.core.errors import EdgekitError

CONNECT_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Board:
    """Where a board is and how to trust it; built from `user@host` and the CLI options."""

    host: str
    user: str | None = None
    port: int | None = None
    identity: str | None = None
    known_hosts: str | None = None
    trust_new_host: bool = False
    python: str = "python3"

    @classmethod
    def parse(cls, address: str, **options) -> Board:
        user, sep, host = address.rpartition("@")
        if not host or (sep and not user) or any(c.isspace() for c in address):
            raise EdgekitError(f"--host must look like user@board or board, got {address!r}")
        return cls(host=host, user=user or None, **options)

    def label(self, user: str, port: int) -> str:
        return f"{user}@{self.host}:{port}"


@dataclass(frozen=True)
class Resolved:
    """The board after ~/.ssh/config: a `Host pi` alias may set HostName, User, Port, IdentityFile."""

    hostname: str
    user: str
    port: int
    key_files: list[str]


def resolve(board: Board, config_path: Path = Path("~/.ssh/config")) -> Resolved:
    import getpass

    import paramiko

    config = paramiko.SSHConfig.from_path(str(config_path.expanduser())) if config_path.expanduser().is_file() \
        else paramiko.SSHConfig()
    entry = config.lookup(board.host)
    user = board.user or entry.get("user") or getpass.getuser()
    port = board.port or int(entry.get("port", 22))
    keys = [board.identity] if board.identity else [os.path.expanduser(k) for k in entry.get("identityfile", [])]
    return Resolved(hostname=entry.get("hostname", board.host), user=user, port=port, key_files=keys)


def _known_hosts_path(board: Board) -> Path:
    return Path(board.known_hosts or "~/.ssh/known_hosts").expanduser()


def _fingerprint(key) -> str:
    import base64
    import hashlib

    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def _host_key_policy(board: Board, label: str):
    import paramiko

    class RefuseUnknown(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client, hostname, key):
            raise EdgekitError(
                f"{label} is not in {_known_hosts_path(board)} (its {key.get_name()} key is {_fingerprint(key)}); "
                "check that fingerprint on the board (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), "
                "then rerun with --trust-new-host to record it")

    # AutoAddPolicy also writes the key to the file loaded with load_host_keys (paramiko saves it).
    return paramiko.AutoAddPolicy() if board.trust_new_host else RefuseUnknown()


class Connection:
    """An open SSH session: run argv lists, copy files, make and remove a scratch folder."""

    def __init__(self, client, label: str):
        self.client = client
        self.label = label
        self._sftp = None

    @property
    def sftp(self):
        if self._sftp is None:
            self._sftp = self.client.open_sftp()
        return self._sftp

    def run(self, argv: list[str], *, timeout: float = 1800.0, on_stderr_line: Callable[[str], None] | None = None,
            input_text: str | None = None) -> tuple[int, str, str]:
        """Run one command (``input_text`` on its stdin); stderr lines are handed on as they arrive (the
        runner's progress)."""
        command = shlex.join(argv)
        try:
            stdin, stdout, stderr = self.client.exec_command(command, timeout=timeout)
            if input_text is not None:
                stdin.write(input_text)
                stdin.channel.shutdown_write()
            stdin.close()
            errors = []
            for line in stderr:
                errors.append(line)
                if on_stderr_line:
                    on_stderr_line(line.rstrip("\n"))
            out = stdout.read().decode(errors="replace")
            code = stdout.channel.recv_exit_status()
        except socket.timeout:
            raise EdgekitError(f"{self.label}: `{argv[0]}` gave no output for {timeout:.0f} s; gave up") from None
        return code, out, "".join(errors)

    def make_scratch_dir(self) -> str:
        code, out, err = self.run(["mktemp", "-d", "-t", "edgekit.XXXXXXXX"], timeout=30)
        path = out.strip()
        if code != 0 or not path.startswith("/") or any(c.isspace() for c in path):
            said = err.strip() or out.strip()
            raise EdgekitError(f"{self.label}: cannot make a scratch folder (mktemp said {said!r})")
        return path

    def remove_dir(self, path: str) -> None:
        self.run(["rm", "-rf", "--", path], timeout=60)

    def put(self, local: Path, remote: str, *, progress: Callable[[int, int], None] | None = None) -> None:
        self.sftp.put(str(local), remote, callback=progress)

    def mkdir(self, remote: str) -> None:
        self.sftp.mkdir(remote)

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        self.client.close()


@contextmanager
def connect(board: Board) -> Iterator[Connection]:
    import paramiko

    target = resolve(board)
    label = board.label(target.user, target.port)
    client = paramiko.SSHClient()
    known_hosts = _known_hosts_path(board)
    if board.trust_new_host and not known_hosts.exists():
        known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        known_hosts.touch(mode=0o600)
    if known_hosts.exists():
        client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(_host_key_policy(board, label))
    for key_file in target.key_files:
        if not Path(key_file).is_file():
            raise EdgekitError(f"identity file {key_file} does not exist")
    try:
        _connect(client, board, target, label, known_hosts)
    except BaseException:
        client.close()
        raise
    connection = Connection(client, label)
    try:
        yield connection
    finally:
        connection.close()


def _connect(client, board: Board, target: Resolved, label: str, known_hosts: Path) -> None:
    """paramiko's exceptions, turned into one line that says what to do."""
    import paramiko

    try:
        client.connect(target.hostname, port=target.port, username=target.user,
                       key_filename=target.key_files or None, look_for_keys=not target.key_files,
                       timeout=CONNECT_TIMEOUT_S, banner_timeout=CONNECT_TIMEOUT_S, auth_timeout=CONNECT_TIMEOUT_S)
    except EdgekitError:
        raise
    except paramiko.BadHostKeyException as error:
        raise EdgekitError(
            f"{label} offered a {error.key.get_name()} host key {_fingerprint(error.key)} that does not match "
            f"{known_hosts}: refusing to connect (someone may be intercepting the connection; if the board was "
            f"reinstalled, remove the old key with ssh-keygen -R '{board.host}')") from None
    except paramiko.PasswordRequiredException:
        raise EdgekitError(f"the key for {label} is passphrase-protected: add it to ssh-agent first") from None
    except paramiko.AuthenticationException:
        tried = ", ".join(target.key_files) or "ssh-agent and ~/.ssh/id_*"
        raise EdgekitError(f"authentication failed for {label} (tried {tried}; only key authentication is used)") \
            from None
    except socket.gaierror as error:
        raise EdgekitError(f"cannot resolve host {target.hostname!r}: {error.strerror}") from None
    except (OSError, paramiko.SSHException) as error:
        # NoValidConnectionsError (refused), timeouts and protocol errors all mean "not an SSH board here".
        reason = re.sub(r"\[Errno [^\]]*\] ", "", " ".join(str(error).split())) or type(error).__name__
        raise EdgekitError(f"cannot reach {label}: {reason}") from None
