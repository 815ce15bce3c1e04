"""Search candidates as Ray tasks (``edgekit search --executor ray``): one task per candidate and seed.

Data reach the workers through Ray's object store, not a shared path: the driver puts the search's
``data.npz`` once and each parent checkpoint once per round, a task writes them to its own
temporary folder, trains, and returns its checkpoint's bytes, which the driver writes into the
search folder. So a cluster needs no shared file system, only edgekit installed on every node.

Each task declares its resources (``num_cpus``: the candidate's threads; ``num_gpus`` when
``--gpus-per-candidate`` asks for one), so Ray runs as many at once as the nodes hold. A task whose
worker dies is retried by Ray (``max_retries``); a task that raises is not (it would raise again).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from pathlib import Path

from edgekit.core.errors import EdgekitError
from edgekit.search.candidate import train_candidate
from edgekit.search.executors import RETRIES, OnResult

CONNECT_SECONDS = 5.0
INSTALL = "pip install edgekit[ray]"


def import_ray():
    try:
        import ray
    except ImportError:
        raise EdgekitError(f"--executor ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def _host_port(address: str) -> tuple[str, int]:
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise EdgekitError(f"--ray-address must be HOST:PORT, ray://HOST:PORT or auto, got {address!r}")
    return host, int(port)


def _is_loopback(address: str) -> bool:
    host, _ = _host_port(address)
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def check_reachable(address: str) -> None:
    """A TCP connection to the head within a few seconds, so a wrong address fails at once, never hangs."""
    if address == "auto":
        return
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_SECONDS):
            pass
    except OSError as error:
        raise EdgekitError(f"--ray-address {address}: no Ray head answers there "
                           f"({error.strerror or error}); start one with `ray start --head`") from None


def join_or_start(address: str | None, *, cpus: int) -> bool:
    """Join the cluster at ``address``, or start an embedded one on this machine; True when this call
    started the connection (and so must end it)."""
    ray = import_ray()
    if ray.is_initialized():  # a caller of the Python API that set Ray up itself
        return False
    if address:
        check_reachable(address)
        # A head on loopback (a cluster on this machine) registered its nodes as 127.0.0.1: the driver
        # must say the same, or Ray looks for a raylet on the machine's outward address.
        local = {"_node_ip_address": "127.0.0.1"} if address != "auto" and _is_loopback(address) else {}
        try:
            ray.init(address=address, log_to_driver=False, **local)
        except (ConnectionError, RuntimeError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise EdgekitError(f"--ray-address {address}: cannot join the Ray cluster ({first})") from None
    else:
        # "local": a new instance even where a `ray start` cluster runs on this machine (ray.init()
        # alone would join that one). Loopback only, no dashboard: nothing is exposed.
        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, cpus), include_dashboard=False,
                 log_to_driver=False, _node_ip_address="127.0.0.1")
    return True


def _check_resources(ray, cpus: int, gpus: float) -> None:
    """A task that no node can hold would wait forever: refuse it before any work."""
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    if not any(r.get("CPU", 0) >= cpus for r in nodes):
        most = max((r.get("CPU", 0) for r in nodes), default=0)
        raise EdgekitError(f"--cpus-per-candidate {cpus}: no Ray node has that many CPUs (the largest has {most:g})")
    if gpus and not any(r.get("GPU", 0) >= gpus for r in nodes):
        raise EdgekitError(f"--gpus-per-candidate {gpus:g}: no Ray node has that many GPUs")


def _train_task(job: dict, data: bytes, parent: bytes | None) -> tuple[dict, bytes]:
    """In a Ray worker: the object-store inputs become files in a private folder for train_candidate."""
    import ray

    with tempfile.TemporaryDirectory(prefix="edgekit-candidate-") as scratch:
        folder = Path(scratch)
        (folder / "data.npz").write_bytes(data)
        parent_path = None
        if parent is not None:
            parent_path = folder / "parent.pt"
            parent_path.write_bytes(parent)
        result = train_candidate({**job, "data": str(folder / "data.npz"),
                                  "parent": str(parent_path) if parent_path else None,
                                  "out": str(folder / "out.pt")})
        result["node"] = ray.get_runtime_context().get_node_id()
        return result, (folder / "out.pt").read_bytes()


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None, *, cpus: int, gpus: float = 0.0) -> None:
        """``cpus``: the fewest CPUs a training of this search asks for, checked against the nodes now."""
        self._refs: dict[str, object] = {}  # file -> its object in the store, put once
        self.owned = join_or_start(address, cpus=cpus)
        self.ray = import_ray()
        try:
            _check_resources(self.ray, cpus, gpus)
        except EdgekitError:
            self.close()
            raise
        self.gpus = gpus
        self.task = self.ray.remote(_train_task)

    def _put(self, path: str | None):
        if path is None:
            return None
        if path not in self._refs:
            self._refs[path] = self.ray.put(Path(path).read_bytes())
        return self._refs[path]

    def run(self, jobs: list[dict], on_result: OnResult) -> None:
        ray = self.ray
        cpus = jobs[0]["threads"]  # the round's: every job of a round has the same
        _check_resources(ray, cpus, self.gpus)
        task = self.task.options(num_cpus=cpus, num_gpus=self.gpus, max_retries=RETRIES, retry_exceptions=False)
        pending = {task.remote(job, self._put(job["data"]), self._put(job["parent"])): index
                   for index, job in enumerate(jobs)}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(ready[0])
            try:
                result, checkpoint = ray.get(ready[0])
            except ray.exceptions.WorkerCrashedError:
                raise EdgekitError(f"a Ray worker died {RETRIES + 1} times training one candidate; "
                                   "see the Ray logs of its node") from None
            except ray.exceptions.RayTaskError as error:
                if isinstance(error.cause, EdgekitError):  # a user's mistake found in the task: its one line
                    raise error.cause from None
                raise
            out = Path(jobs[index]["out"])
            out.parent.mkdir(parents=True, exist_ok=True)
            partial = out.with_suffix(".pt.partial")
            partial.write_bytes(checkpoint)
            os.replace(partial, out)
            on_result(index, result)

    def close(self) -> None:
        self._refs.clear()
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()
