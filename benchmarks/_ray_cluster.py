"""A two-node Ray cluster on this machine: a head and a worker node, each its own `ray start --block`
process in its own session, loopback only, stopped by process group at the end (never `ray stop`,
which would stop every Ray on the machine, other people's included)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

START_SECONDS = 120  # both nodes up within this, or the benchmark stops (on 2 busy cores a node takes ~10-30 s)


# Ray turns a loopback --node-ip-address into the machine's outward address
# (services.resolve_ip_for_localhost), and its single-machine mode refuses a second node. The nodes
# and the driver of this benchmark keep the address they are given instead, so all of it binds 127.0.0.1.
KEEP_LOOPBACK = "import ray._private.services as s; s.resolve_ip_for_localhost = lambda host: host"


def keep_loopback() -> None:
    """For the driver: the same patch as the nodes' (see KEEP_LOOPBACK)."""
    exec(KEEP_LOOPBACK, {})


def loopback_env() -> dict:
    """edgekit importable by the nodes' workers; Ray 2.60's token authentication off: nothing outside
    this machine reaches loopback, and the token file would go to ~/.ray, shared by everyone here."""
    path = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "RAY_AUTH_MODE": "disabled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    handle = log.open("w")
    # A session of its own: the node's gcs, raylet and workers can be signalled as one group.
    ray_cli = f"{KEEP_LOOPBACK}; from ray.scripts.scripts import main; main()"
    return subprocess.Popen([sys.executable, "-c", ray_cli, "start", "--block", "--node-ip-address=127.0.0.1",
                             "--num-cpus=1", "--disable-usage-stats", *args], stdout=handle, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def _alive_nodes(address: str, env: dict) -> int:
    probe = (KEEP_LOOPBACK + "; import ray; ray.init(address=%r, log_to_driver=False, _node_ip_address='127.0.0.1');"
             "print(sum(n['Alive'] for n in ray.nodes()))") % address
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, env=env)
    except subprocess.TimeoutExpired:
        return 0
    lines = done.stdout.strip().splitlines()
    return int(lines[-1]) if done.returncode == 0 and lines and lines[-1].isdigit() else 0


def _stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # `ray start --block` takes its node's processes down
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever of that session is left
    process.wait(timeout=10)


@contextlib.contextmanager
def two_node_cluster(logs: Path) -> Iterator[str]:
    """Yield the head's address once both nodes have joined; both are stopped on the way out."""
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = loopback_env()
    temp = tempfile.mkdtemp(prefix="ekray-")  # short: Ray's socket paths must fit in 107 characters
    nodes = [_start(["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}"],
                    logs / "head.log", env)]
    try:
        deadline = time.monotonic() + START_SECONDS
        while _alive_nodes(address, env) < 1:
            if time.monotonic() > deadline or nodes[0].poll() is not None:
                raise RuntimeError(f"the Ray head did not start; see {logs / 'head.log'}")
            time.sleep(2)
        nodes.append(_start([f"--address={address}"], logs / "worker.log", env))
        while _alive_nodes(address, env) < 2:
            if time.monotonic() > deadline or nodes[1].poll() is not None:
                raise RuntimeError(f"the Ray worker node did not join; see {logs / 'worker.log'}")
            time.sleep(2)
        yield address
    finally:
        for node in reversed(nodes):
            _stop(node)
