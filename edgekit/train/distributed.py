"""Process-group plumbing on top of torchrun (torch.distributed.run): edgekit never spawns ranks itself.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / LOCAL_WORLD_SIZE and the rendezvous; a plain
``edgekit train`` is simply world size 1 and takes the same code path without a process group.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from edgekit.core.errors import EdgekitError


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: object  # torch.device
    backend: str | None  # None when running as a single process

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None


def _choose_device(choice: str, local_rank: int):
    import torch

    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise EdgekitError("--device cuda asked for, but PyTorch sees no CUDA device here")
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        return torch.device("cuda", torch.cuda.current_device())
    if choice != "cpu":
        raise EdgekitError(f"unknown device {choice!r}; expected auto, cpu or cuda")
    return torch.device("cpu")


def init_distributed(device_choice: str = "auto") -> DistContext:
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    device = _choose_device(device_choice, local_rank)
    backend = None
    if world_size > 1:
        backend = "nccl" if device.type == "cuda" else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
    return DistContext(rank, world_size, local_rank, local_world_size, device, backend)


def single_process(device_choice: str = "cpu") -> DistContext:
    """World size 1 without looking at torchrun's variables: training inside another stage or a worker."""
    return DistContext(0, 1, 0, 1, _choose_device(device_choice, 0), None)


def shutdown(context: DistContext) -> None:
    import torch.distributed as dist

    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sums(context: DistContext, values: list[float]) -> list[float]:
    """Sum each value over ranks (a no-op for one process)."""
    if not context.distributed:
        return list(values)
    import torch
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def all_reduce_max(context: DistContext, value: float) -> float:
    """The largest value over ranks (itself for one process)."""
    if not context.distributed:
        return value
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())


def barrier(context: DistContext) -> None:
    if context.distributed:
        import torch.distributed as dist

        dist.barrier()


def broadcast_error(context: DistContext, message: str | None) -> str | None:
    """Rank 0's error message (or None) on every rank, so all ranks stop together with the same line."""
    if not context.distributed:
        return message
    import torch.distributed as dist

    box = [message]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@dataclass(frozen=True)
class Launch:
    """How torchrun should start the ranks: one node (standalone) or several (c10d rendezvous)."""

    nproc_per_node: int
    nnodes: int = 1
    rdzv_endpoint: str | None = None  # host:port of any node, the same on every node
    rdzv_id: str = "edgekit"

    def torchrun_args(self) -> list[str]:
        args = ["--nproc-per-node", str(self.nproc_per_node)]
        if self.nnodes == 1 and self.rdzv_endpoint is None:
            return ["--standalone", *args]
        if self.rdzv_endpoint is None:
            raise EdgekitError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the same on every node)")
        return [*args, "--nnodes", str(self.nnodes), "--rdzv-backend", "c10d",
                "--rdzv-endpoint", self.rdzv_endpoint, "--rdzv-id", self.rdzv_id]


def launch_with_torchrun(launch: Launch, module_args: list[str]) -> int:
    """Run ``python -m edgekit.train <module_args>`` under torchrun; returns its exit status."""
    if launch.nproc_per_node < 1:
        raise EdgekitError(f"--nproc must be at least 1, got {launch.nproc_per_node}")
    command = [sys.executable, "-m", "torch.distributed.run", *launch.torchrun_args(), "-m", "edgekit.train",
               *module_args]
    env = dict(os.environ)
    if "OMP_NUM_THREADS" not in env:
        # torchrun would force 1 thread per rank; share this machine's cores between the local ranks instead.
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // launch.nproc_per_node))
    return subprocess.run(command, env=env, check=False).returncode
