"""A throw-away, key-only OpenSSH server on 127.0.0.1 for the remote-bench tests.

Everything (host key, client key, config, known_hosts) lives in one temp folder; nothing touches
the user's ~/.ssh. `force_command` turns it into a fake board (e.g. one that runs under qemu).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.system_tools import require_system_tool

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


def require_sshd() -> None:
    require_system_tool(Path(SSHD).exists() and shutil.which("ssh-keygen") is not None,
                        "OpenSSH server missing: apt-get install openssh-server")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return Path(f"{path}.pub").read_text().strip()


@dataclass
class SshBoard:
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    host_public_key: str
    folder: Path
    process: subprocess.Popen

    @property
    def address(self) -> str:
        return f"{self.user}@127.0.0.1"

    def cli_options(self) -> list[str]:
        # The loopback "board" runs the runner with this interpreter: it has numpy and onnxruntime.
        return ["--host", self.address, "--port", str(self.port), "--identity", str(self.client_key),
                "--known-hosts", str(self.known_hosts), "--remote-python", sys.executable]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_sshd(folder: Path, *, force_command: str | None = None) -> SshBoard:
    require_sshd()
    import getpass

    folder.mkdir(parents=True, exist_ok=True)
    host_public = _keygen(folder / "host_key.key")
    client_public = _keygen(folder / "client_key.key")
    (folder / "authorized_keys").write_text(client_public + "\n")
    port = _free_port()
    config = [
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {folder / 'host_key.key'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}", f"PidFile {folder / 'sshd.pid'}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
        "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password", f"Subsystem sftp {SFTP_SERVER}",
    ]
    if force_command:
        config.append(f"ForceCommand {force_command}")
    (folder / "sshd_config").write_text("\n".join(config) + "\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")],
                               stdout=subprocess.DEVNULL, stderr=open(folder / "sshd.log", "w"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {(folder / 'sshd.log').read_text()[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_public}\n")
    return SshBoard(port=port, user=getpass.getuser(), client_key=folder / "client_key.key",
                    known_hosts=known_hosts, host_public_key=host_public, folder=folder, process=process)
