"""Process groups for `torchrun`: DDP by default, FSDP on request; no-ops in a single process.

Under `torchrun --nproc_per_node N` the environment holds RANK, WORLD_SIZE and LOCAL_RANK;
`DistEnv.setup` joins the group (nccl on GPU, gloo on CPU). Everything here degrades to the
identity when WORLD_SIZE is absent, so the trainer has a single code path.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)


@dataclass
class DistEnv:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False
    """True when `setup` created the process group (and `teardown` must destroy it)."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def setup(cls, device: str = "auto") -> DistEnv:
        """Join the torchrun process group if there is one and pick this rank's device."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        dev = _pick_device(device, local)
        owns = False
        if world > 1 and not dist.is_initialized():
            backend = "nccl" if dev.type == "cuda" else "gloo"
            if dev.type == "cuda":
                torch.cuda.set_device(dev)
            dist.init_process_group(backend=backend)
            owns = True
            log.info("rank %d/%d joined the %s group on %s", rank, world, backend, dev)
        return cls(rank, world, local, dev, owns)

    def teardown(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _pick_device(device: str, local_rank: int) -> torch.device:
    if device == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else \
            torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"system.device={device!r} but CUDA is not available; "
                         "use --system.device cpu")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(f"cuda:{local_rank}")
    return dev


def wrap_model(model: nn.Module, env: DistEnv, fsdp: bool) -> nn.Module:
    """DDP (or FSDP2 `fully_shard`, per block then the root) when distributed, else `model`."""
    if not env.distributed:
        return model
    if fsdp:
        from torch.distributed.fsdp import fully_shard

        for block in model.blocks:
            fully_shard(block)
        fully_shard(model)
        return model
    ids = [env.device.index] if env.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def no_sync(wrapped: nn.Module, skip: bool):
    """Skip DDP's gradient all-reduce on all but the last micro-batch of an accumulation."""
    if skip and isinstance(wrapped, nn.parallel.DistributedDataParallel):
        return wrapped.no_sync()
    return contextlib.nullcontext()


def all_reduce_sum(t: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum over ranks (in place and returned); identity in a single process."""
    if env.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_max(t: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if env.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def is_sharded(model: nn.Module) -> bool:
    """True if FSDP2 sharded the model's parameters (they are DTensors)."""
    return any(type(p).__name__ == "DTensor" for p in model.parameters())


def full_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Unsharded (model, optimizer) state dicts on CPU; collective under FSDP (all ranks call)."""
    if not is_sharded(model):
        return model.state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_state_dict(model, optimizer, options=opts)


def load_full_state(model: nn.Module, optimizer: torch.optim.Optimizer, model_sd: dict,
                    optim_sd: dict) -> None:
    """Inverse of `full_state` (every rank passes the full state it read from disk)."""
    if not is_sharded(model):
        model.load_state_dict(model_sd)
        optimizer.load_state_dict(optim_sd)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    set_state_dict(model, optimizer, model_state_dict=model_sd, optim_state_dict=optim_sd,
                   options=StateDictOptions(full_state_dict=True))
