"""Atomic training checkpoints: safetensors for tensors, JSON for everything else.

Layout under `root` (usually RUN/checkpoints):

    step_00000100/model.safetensors   model state dict
    step_00000100/optim.safetensors   optimizer tensors, plus RNG states under rng/
    step_00000100/state.json          optimizer scalars, scheduler, sampler, RNG, step, metrics
    index.json                        {"latest": name, "best": {...}, "checkpoints": [...]}

A checkpoint is written into a hidden temporary directory, each file fsynced, then renamed into
place; `index.json` is replaced last, so a crash at any point leaves the previous checkpoint as
`latest`. Nothing is ever unpickled: loading reads safetensors and JSON only.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from cocomix_lens.data.files import atomic_write_json

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
INDEX = "index.json"


@dataclass
class Checkpoint:
    """What a checkpoint holds, as plain objects."""

    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None = None
    state: dict[str, Any] = field(default_factory=dict)
    """JSON part: scheduler, sampler, rng, metrics and anything the trainer adds."""
    path: Path | None = None


# ---- atomic file helpers ------------------------------------------------------------------
def fsync_path(path: Path) -> None:
    """Flush a file or directory to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    # Copies break weight tying (safetensors refuses shared storage) and leave the GPU.
    plain = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    save_file(plain, str(path))
    fsync_path(path)


# ---- optimizer and RNG state <-> (tensors, JSON) ------------------------------------------
def split_optimizer_state(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """torch optimizer state_dict -> (flat tensors, JSON rest). Keys may be ints or names."""
    tensors, scalars, keys = {}, {}, []
    for i, (key, slots) in enumerate(sd["state"].items()):
        keys.append(key)
        scalars[str(i)] = {}
        for slot, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"state.{i}.{slot}"] = value
            else:
                scalars[str(i)][slot] = value
    return tensors, {"keys": keys, "scalars": scalars, "param_groups": sd["param_groups"]}


def join_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict:
    """Inverse of `split_optimizer_state`."""
    state = {}
    for i, key in enumerate(meta["keys"]):
        slots = dict(meta["scalars"][str(i)])
        prefix = f"state.{i}."
        slots.update({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        state[key] = slots
    return {"state": state, "param_groups": meta["param_groups"]}


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every RNG the run touches: torch (CPU and CUDA) as tensors, numpy and python as JSON."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, pystate, pygauss = random.getstate()
    meta = {"numpy": [name, keys.tolist(), pos, has_gauss, gauss],
            "python": [version, list(pystate), pygauss]}
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    name, keys, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, pystate, pygauss = meta["python"]
    random.setstate((version, tuple(pystate), pygauss))


# ---- the manager --------------------------------------------------------------------------
class CheckpointManager:
    """Saves, lists, prunes and loads checkpoints under `root`."""

    def __init__(self, root: str | Path, keep_last: int = 2, keep_best: bool = True):
        if keep_last < 1:
            raise ValueError(f"keep_last={keep_last} must be >= 1 to be able to resume")
        self.root = Path(root)
        self.keep_last, self.keep_best = keep_last, keep_best

    # index ----------------------------------------------------------------------------------
    def index(self) -> dict[str, Any]:
        path = self.root / INDEX
        if not path.is_file():
            return {"format_version": FORMAT_VERSION, "latest": None, "best": None,
                    "checkpoints": []}
        return json.loads(path.read_text())

    def latest(self) -> Path | None:
        """Directory of the newest complete checkpoint, or None."""
        name = self.index()["latest"]
        return self.root / name if name else None

    def best(self) -> Path | None:
        best = self.index()["best"]
        return self.root / best["name"] if best else None

    # save -----------------------------------------------------------------------------------
    def save(self, ckpt: Checkpoint, metric: float | None = None) -> Path:
        """Write `ckpt` atomically; `metric` (lower is better) competes for `best`."""
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"step_{ckpt.step:08d}"
        tmp = self.root / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            self._write(tmp, ckpt)
            final = self.root / name
            if final.exists():  # a re-save of the same step (e.g. after a resume)
                shutil.rmtree(final)
            os.replace(tmp, final)
            fsync_path(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._commit(name, ckpt.step, metric)
        return final

    def _write(self, directory: Path, ckpt: Checkpoint) -> None:
        write_tensors(directory / "model.safetensors", ckpt.model)
        state = {k: v for k, v in ckpt.state.items() if k != "rng_tensors"}
        tensors, state["rng"] = capture_rng()  # the RNG as it is at save time
        if ckpt.optimizer is not None:
            opt_tensors, state["optimizer"] = split_optimizer_state(ckpt.optimizer)
            tensors.update(opt_tensors)
        write_tensors(directory / "optim.safetensors", tensors)
        state.update(format_version=FORMAT_VERSION, step=ckpt.step)
        atomic_write_json(directory / "state.json", state)

    def _commit(self, name: str, step: int, metric: float | None) -> None:
        idx = self.index()
        entries = [e for e in idx["checkpoints"] if e["name"] != name]
        entries.append({"name": name, "step": step, "metric": metric})
        idx["checkpoints"] = sorted(entries, key=lambda e: e["step"])
        idx["latest"] = name
        best = idx["best"]
        if metric is not None and (best is None or metric < best["metric"]):
            idx["best"] = {"name": name, "step": step, "metric": metric}
        keep = {e["name"] for e in idx["checkpoints"][-self.keep_last:]}
        if self.keep_best and idx["best"]:
            keep.add(idx["best"]["name"])
        doomed = [e["name"] for e in idx["checkpoints"] if e["name"] not in keep]
        idx["checkpoints"] = [e for e in idx["checkpoints"] if e["name"] in keep]
        if idx["best"] and idx["best"]["name"] not in keep:
            idx["best"] = None
        atomic_write_json(self.root / INDEX, idx)  # the commit point
        fsync_path(self.root)
        for old in doomed:  # only after the index no longer names them
            shutil.rmtree(self.root / old, ignore_errors=True)

    # load -----------------------------------------------------------------------------------
    def load(self, path: str | Path | None = None,
             device: str | torch.device = "cpu") -> Checkpoint:
        """Read a checkpoint (default: latest). RNG state is returned, not applied:
        `restore_rng(ckpt.state["rng_tensors"], ckpt.state["rng"])`."""
        path = Path(path) if path is not None else self.latest()
        if path is None or not (path / "state.json").is_file():
            raise FileNotFoundError(f"no complete checkpoint under {self.root}; start without "
                                    "--resume or point to a run directory that has one")
        state = json.loads((path / "state.json").read_text())
        model = load_file(str(path / "model.safetensors"), device=str(device))
        tensors = load_file(str(path / "optim.safetensors"))
        optimizer = None
        if "optimizer" in state:
            opt_tensors = {k: v for k, v in tensors.items() if k.startswith("state.")}
            optimizer = join_optimizer_state(opt_tensors, state.pop("optimizer"))
        state["rng_tensors"] = {k: v for k, v in tensors.items() if k.startswith("rng.")}
        return Checkpoint(step=int(state["step"]), model=model, optimizer=optimizer,
                          state=state, path=path)

    def clean_temporaries(self) -> None:
        """Remove half-written checkpoint directories left by a crash."""
        for tmp in self.root.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)


def write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """safetensors file, fsynced (a seam tests patch to simulate a crash mid-save)."""
    _save_tensors(tensors, path)
