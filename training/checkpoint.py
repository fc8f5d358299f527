"""Atomic training checkpoints: safetensors for tensors, JSON for everything else.

Layout under `root` (usually RUN/checkpoints):

    step_00000100/model.safetensors   model state dict
    step_00000100/optim.safetensors   optimizer tensors, plus RNG states under rng/
    step_00000100/state.json          format_version, optimizer scalars, scheduler, sampler,
                                      RNG, step, metrics, size + sha256 of both tensor files
    index.json                        {"format_version", "latest", "best", "checkpoints"}

A checkpoint is written into a hidden temporary directory (tensor files fsynced, JSON through
the atomic-write helper), then the directory is renamed into place; `index.json` is replaced
last, so a crash at any point leaves the previous checkpoint loadable. Loading falls back to
the newest complete checkpoint when a newer one is damaged (truncated file, deleted directory).
Only directories named like the manager's own (`step_<8 digits>`) directly under `root` are
ever deleted, whatever `index.json` says: a crafted index cannot delete anything else.
Nothing is ever unpickled: loading reads safetensors and JSON only.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cocomix_lens.data.files import (
    CorruptFileError,
    atomic_write_json,
    fsync_path,
    read_versioned_json,
    remove_temporaries,
    sha256_file,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
INDEX = "index.json"
INDEX_FIELDS = {"latest?": (str, type(None)), "best?": (dict, type(None)), "checkpoints": list}
"""index.json's fields and their JSON types (a wrong type: the index is rebuilt)."""
STATE = "state.json"
TENSOR_FILES = ("model.safetensors", "optim.safetensors")
NAME = re.compile(r"step_(\d{8})\Z")  # the only names the manager creates (and may delete)


@dataclass
class Checkpoint:
    """What a checkpoint holds, as plain objects."""

    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None = None
    state: dict[str, Any] = field(default_factory=dict)
    """JSON part: scheduler, sampler, rng, metrics and anything the trainer adds."""
    path: Path | None = None


class DamagedCheckpointError(ValueError):
    """A checkpoint directory exists but cannot be read back whole."""


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    # Copies break weight tying (safetensors refuses shared storage) and leave the GPU.
    plain = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    try:
        save_file(plain, str(path))
        fsync_path(path)
    except (SafetensorError, OSError) as err:  # safetensors' own I/O errors name no errno
        path.unlink(missing_ok=True)
        need = sum(v.numel() * v.element_size() for v in plain.values())
        code = getattr(err, "errno", None) or (
            errno.ENOSPC if shutil.disk_usage(path.parent).free < need else errno.EIO)
        raise OSError(code, f"{path}: the checkpoint could not be written "
                            f"({os.strerror(code)}); fix: free disk space or choose another "
                            "--out", str(path)) from None


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

    # names and the index ---------------------------------------------------------------------
    def owned(self, name: Any) -> Path | None:
        """root/name if `name` is one the manager creates and it lies inside root, else None.

        The pattern excludes separators and '..'; the resolve check also refuses symlinks
        planted under an own name that point elsewhere."""
        if not isinstance(name, str) or not NAME.match(name):
            return None
        path = self.root / name
        if path.is_symlink() or path.resolve().parent != self.root.resolve():
            return None
        return path

    def index(self) -> dict[str, Any]:
        """index.json with every name not the manager's own dropped (a warning names them)."""
        path = self.root / INDEX
        empty = {"format_version": FORMAT_VERSION, "latest": None, "best": None,
                 "checkpoints": []}
        if path.is_dir():  # no write could replace it: the next commit would fail
            raise CorruptFileError(f"{path} is a directory, the checkpoint index file was "
                                   "expected; fix: move it away and resume (the index is "
                                   "rebuilt from the checkpoint directories)")
        if not path.is_file():
            return empty
        try:
            idx = read_versioned_json(path, FORMAT_VERSION, missing=str(path),
                                      fix=f"start a new run (another --out) or delete {path}",
                                      fields=INDEX_FIELDS)
        except CorruptFileError as err:
            log.warning("%s; rebuilding the index from the checkpoint directories", err)
            return {**empty, "checkpoints": [{"name": p.name, "step": _step_of(p.name),
                                              "metric": None} for p in self._scan()]}
        entries = [e for e in idx.get("checkpoints", []) if self._entry(e)]
        foreign = len(idx.get("checkpoints", [])) - len(entries)
        best = idx.get("best")
        if best is not None and not self._entry(best):
            best, foreign = None, foreign + 1
        if foreign:
            log.warning("%s names %d entries that are not checkpoints of this run (or not of "
                        "the index's field types); ignored", path, foreign)
        latest = idx.get("latest") if self.owned(idx.get("latest")) else None
        return {"format_version": FORMAT_VERSION, "latest": latest, "best": best,
                "checkpoints": entries}

    def _entry(self, entry: Any) -> bool:
        """An index entry naming an own checkpoint, with an integer step and a number or null
        metric (an entry edited to another type is ignored, not compared with numbers)."""
        return (isinstance(entry, dict) and self.owned(entry.get("name")) is not None
                and isinstance(entry.get("step"), int) and not isinstance(entry["step"], bool)
                and (entry.get("metric") is None or isinstance(entry["metric"], (int, float))))

    def _scan(self) -> list[Path]:
        """Own checkpoint directories on disk, oldest first."""
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.iterdir() if self.owned(p.name) and p.is_dir()]
        return sorted(found, key=lambda p: p.name)

    def candidates(self) -> list[Path]:
        """Checkpoint directories newest first: the index's, then any complete one on disk."""
        names = {e["name"] for e in self.index()["checkpoints"]} | {p.name for p in self._scan()}
        return [self.root / n for n in sorted(names, reverse=True)]

    def latest(self) -> Path | None:
        """Directory of the newest checkpoint that looks complete, or None."""
        for path in self.candidates():
            if _looks_complete(path):
                return path
        return None

    def best(self) -> Path | None:
        best = self.index()["best"]
        return self.root / best["name"] if best else None

    def used(self) -> bool:
        """True if `root` holds an index or any checkpoint of a previous run."""
        return (self.root / INDEX).is_file() or bool(self._scan())

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
                _remove(self.owned(name))
            tmp.replace(final)
            fsync_path(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._commit(name, ckpt.step, metric)
        return final

    def _write(self, directory: Path, ckpt: Checkpoint) -> None:
        write_tensors(directory / TENSOR_FILES[0], ckpt.model)
        state = {k: v for k, v in ckpt.state.items() if k != "rng_tensors"}
        tensors, state["rng"] = capture_rng()  # the RNG as it is at save time
        if ckpt.optimizer is not None:
            opt_tensors, state["optimizer"] = split_optimizer_state(ckpt.optimizer)
            tensors.update(opt_tensors)
        write_tensors(directory / TENSOR_FILES[1], tensors)
        # Sizes and hashes let a loader tell a truncated or altered file from a good one.
        state["files"] = {f: {"bytes": (directory / f).stat().st_size,
                              "sha256": sha256_file(directory / f)} for f in TENSOR_FILES}
        state.update(format_version=FORMAT_VERSION, step=ckpt.step)
        atomic_write_json(directory / STATE, state)

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
        # Also own directories the index does not list (a kill between a checkpoint's rename
        # and this commit): older than this step, they are nobody's.
        doomed = sorted({e["name"] for e in idx["checkpoints"] if e["name"] not in keep} | {
            p.name for p in self._scan() if p.name not in keep and _step_of(p.name) < step})
        idx["checkpoints"] = [e for e in idx["checkpoints"] if e["name"] in keep]
        if idx["best"] and idx["best"]["name"] not in keep:
            idx["best"] = None
        atomic_write_json(self.root / INDEX, idx)  # the commit point
        fsync_path(self.root)
        for old in doomed:  # only after the index no longer names them
            _remove(self.owned(old))

    def reset(self) -> None:
        """Delete every own checkpoint and the index (a fresh run forced into a used dir)."""
        for path in self._scan():
            _remove(path)
        (self.root / INDEX).unlink(missing_ok=True)
        self.clean_temporaries()

    # load -----------------------------------------------------------------------------------
    def load(self, path: str | Path | None = None,
             device: str | torch.device = "cpu") -> Checkpoint:
        """Read a checkpoint (default: the newest complete one, skipping damaged ones with a
        warning). RNG state is returned, not applied:
        `restore_rng(ckpt.state["rng_tensors"], ckpt.state["rng"])`."""
        if path is not None:
            return read_checkpoint(Path(path), device)
        for cand in self.candidates():
            try:
                ck = read_checkpoint(cand, device)
            except (DamagedCheckpointError, CorruptFileError, FileNotFoundError) as err:
                log.warning("skipping damaged checkpoint: %s; falling back to an older one", err)
                continue
            return ck
        raise FileNotFoundError(f"no complete checkpoint under {self.root}; start without "
                                "--resume or point to a run directory that has one")

    def clean_temporaries(self) -> None:
        """Remove what killed writers left: half-written checkpoint directories, temporary
        files of the index, and `step_*` directories older than the index's latest that the
        index no longer lists (a kill between pruning's commit and its deletion)."""
        if not self.root.is_dir():
            return
        for tmp in self.root.glob(".tmp-step_*"):
            shutil.rmtree(tmp, ignore_errors=True)
        remove_temporaries(self.root)
        idx = self.index()
        listed = {e["name"] for e in idx["checkpoints"]}
        latest = _step_of(idx["latest"]) if idx["latest"] else -1
        for path in self._scan():
            if path.name not in listed and _step_of(path.name) < latest:
                _remove(path)

    def check_contained(self, out: Path) -> None:
        """Refuse a checkpoint root that is not a real directory of `out` (a symlink to another
        run's checkpoints would let pruning, --resume and --force delete there)."""
        real = self.root.resolve()
        if self.root.is_symlink() or real != out.resolve() / self.root.name:
            raise ValueError(f"{self.root} resolves to {real}, outside {out}: deleting old "
                             "checkpoints there would touch another run; fix: replace the link "
                             f"by a directory (mv it away) or choose another --out")


def read_checkpoint(path: Path, device: str | torch.device = "cpu") -> Checkpoint:
    """One checkpoint directory -> Checkpoint; DamagedCheckpointError naming the bad file."""
    state = read_versioned_json(
        path / STATE, FORMAT_VERSION,
        missing=f"{path / STATE} is missing; fix: resume from another checkpoint or start anew",
        fix="resume with the cocomix-lens version that wrote it, or start a new run")
    for name, want in state.get("files", {}).items():
        f = path / name
        if not f.is_file() or f.stat().st_size != want["bytes"] or sha256_file(f) != want[
                "sha256"]:
            raise DamagedCheckpointError(f"{f} is missing, truncated or altered (its size or "
                                         "sha256 differs from state.json)")
    try:
        model = load_file(str(path / TENSOR_FILES[0]), device=str(device))
        tensors = load_file(str(path / TENSOR_FILES[1]))
    except (SafetensorError, OSError) as err:
        raise DamagedCheckpointError(f"{path} cannot be read ({err})") from err
    optimizer = None
    if "optimizer" in state:
        opt_tensors = {k: v for k, v in tensors.items() if k.startswith("state.")}
        optimizer = join_optimizer_state(opt_tensors, state.pop("optimizer"))
    state["rng_tensors"] = {k: v for k, v in tensors.items() if k.startswith("rng.")}
    return Checkpoint(step=int(state["step"]), model=model, optimizer=optimizer, state=state,
                      path=path)


def _looks_complete(path: Path) -> bool:
    """Cheap check (no hashing): state.json present and the tensor files of recorded size.
    Another format_version counts as complete: `load` then refuses it with a clear error
    instead of a resume silently starting over."""
    try:
        state = json.loads((path / STATE).read_text())
        files = state.get("files") or {f: None for f in TENSOR_FILES}
        return all((path / f).is_file() and (w is None or (path / f).stat().st_size ==
                                             w["bytes"]) for f, w in files.items())
    except (OSError, ValueError, AttributeError, TypeError, KeyError):  # damaged: not complete
        return False


def _step_of(name: str) -> int:
    return int(NAME.match(name).group(1))


def _remove(path: Path | None) -> None:
    """Delete an own checkpoint directory (`owned` already vetted the path; None: nothing).
    It is first renamed to a temporary name (atomic), so a kill during the deletion leaves a
    `.tmp-step_*` that `clean_temporaries` removes on the next start, never a half-deleted
    `step_*` that looks like a checkpoint (the SIGKILL loop test caught one)."""
    if path is not None and path.is_dir():
        doomed = path.with_name(f".tmp-{path.name}-removing")
        try:
            path.rename(doomed)
        except OSError:  # another rank or process removed it first, as rmtree tolerated
            return
        shutil.rmtree(doomed, ignore_errors=True)


def write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """safetensors file, fsynced (a seam tests patch to simulate a crash mid-save)."""
    _save_tensors(tensors, path)
