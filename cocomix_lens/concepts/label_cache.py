"""The label cache: top-k concept labels for every token of a token shard, on disk.

Layout of a cache directory (format_version 1):
    <split>.ids.bin     [n_tokens, k] latent ids; uint16 if n_latents <= 65,536, else int32
    <split>.scores.bin  [n_tokens, k] float16 scores, best first
    meta.json           teacher/SAE names and sha256, hook, method, k, window L, batch size,
                        shard sha256 per split and progress (windows done)

Row i of a split is aligned with token i of the shard. Its labels come from running the
teacher on the window [floor(i/L)*L, +L) of the shard; the loss also scores the token right
after the window, so the window's last position gets real labels too (only the shard's very
last token has no target). Windows are processed in fixed batches and progress is committed
(memmaps flushed, then meta.json replaced atomically) after each batch, so an interrupted build
resumes at the first uncommitted batch and ends byte-identical to an uninterrupted one.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cocomix_lens.concepts.capture import IGNORE
from cocomix_lens.data.files import atomic_write_json, read_versioned_json, remove_temporaries
from cocomix_lens.data.identity import check_identity
from cocomix_lens.data.lock import DirLock
from cocomix_lens.data.shards import gather_windows
from cocomix_lens.progress import Progress
from cocomix_lens.remedy import Remedy, attach, remedied

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
META = "meta.json"
# Fields that define a cache: resuming or reusing with any of them different is refused.
IDENTITY = ("format_version", "teacher_sha256", "sae_sha256", "hook_name", "n_latents",
            "method", "k", "window", "ids_dtype", "tokenizer_sha256")


def ids_dtype(n_latents: int) -> np.dtype:
    """uint16 while every latent id fits (n_latents <= 65,536), else int32."""
    return np.dtype(np.uint16 if n_latents <= 65_536 else np.int32)


class LabelCache:
    """Read access to a finished cache: `LabelCache.open(dir, shards=..., teacher_sha=...)`."""

    def __init__(self, root: Path, meta: dict[str, Any]) -> None:
        self.root = root
        self.meta = meta
        self.k = int(meta["k"])
        self.window = int(meta["window"])
        self._maps: dict[tuple[str, str], np.memmap] = {}

    # ------------------------------------------------------------------ reading

    @classmethod
    def open(cls, root: str | Path, shards: Any = None, teacher_sha: str | None = None,
             sae_sha: str | None = None) -> LabelCache:
        """Open a complete cache, refusing one built for another teacher, SAE or shard.

        `shards` is a `TokenShards` (or its directory); teacher_sha / sae_sha are
        `module_sha256(teacher)` / `sae_sha256(sae)` of the models training will use.
        """
        root = Path(root)
        meta = read_meta(root)
        resume, remedy = Remedy("labels", more=True), relabel(root)
        fix = f"fix: {remedy}"
        with remedied(resume, remedy):
            for split, info in meta["splits"].items():
                if info["done_windows"] < info["windows"]:
                    raise ValueError(f"label cache {root} is incomplete ({split}: "
                                     f"{info['done_windows']}/{info['windows']} windows); fix: "
                                     f"{resume} to resume it")
            for what, want in (("teacher", teacher_sha), ("sae", sae_sha)):
                have = meta[f"{what}_sha256"]
                if want is not None and want != have:
                    raise ValueError(f"label cache {root} was built with another {what} "
                                     f"(sha256 {have[:12]}…, expected {want[:12]}…); {fix}")
            if shards is not None:
                _check_shards(root, meta, _manifest_of(shards), fix)
        return cls(root, meta)

    @property
    def splits(self) -> list[str]:
        return list(self.meta["splits"])

    def array(self, split: str, kind: str = "ids") -> np.memmap:
        """Read-only memmap [n_tokens, k] of a split's label `ids` or `scores`."""
        if split not in self.meta["splits"]:
            raise ValueError(f"label cache {self.root} has no split {split!r}; it holds "
                             f"{', '.join(self.meta['splits'])}")
        if (split, kind) not in self._maps:
            dtype = self.meta["ids_dtype"] if kind == "ids" else "float16"
            self._maps[split, kind] = _memmap(self.root, split, kind, np.dtype(dtype),
                                              self.meta["splits"][split]["tokens"], self.k, "r")
        return self._maps[split, kind]

    def labels(self, split: str, starts: np.ndarray | list[int], seq_len: int) -> torch.Tensor:
        """int64 [batch, seq_len, k] label ids of the tokens x = tok[s:s+seq_len]."""
        return torch.from_numpy(self._gather(split, starts, seq_len, "ids").astype(np.int64))

    def label_scores(self, split: str, starts: np.ndarray | list[int],
                     seq_len: int) -> torch.Tensor:
        """float32 [batch, seq_len, k] label scores aligned with `labels`."""
        return torch.from_numpy(self._gather(split, starts, seq_len, "scores").astype(np.float32))

    def _gather(self, split: str, starts: Any, seq_len: int, kind: str) -> np.ndarray:
        return gather_windows(self.array(split, kind), starts, seq_len,
                              where=f"seq_len {seq_len} on split {split!r} of the label cache",
                              fix="draw them from the split the cache labels")

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, root: str | Path, shards: Any, extractor: Any, *, teacher_sha: str,
              sae_sha: str, teacher_name: str = "", sae_name: str = "", k: int = 4,
              window: int = 256, batch_size: int = 8, splits: list[str] | None = None,
              progress: Progress | None = None) -> LabelCache:
        """Label every token of `shards` (a `TokenShards`) with `extractor`, resuming a
        partial cache of the same identity in `root`; returns the finished cache.
        `progress(iterable, total, description)` wraps the batch loop (the CLI: tqdm)."""
        root = Path(root)
        if window < 2 or batch_size < 1:
            raise ValueError(f"window must be >= 2 and batch_size >= 1, got {window}, "
                             f"{batch_size}")
        splits = list(shards.manifest["splits"]) if splits is None else splits
        # Every check runs before the directory is touched: a refused command leaves no
        # cache behind that would block the corrected one.
        meta = _new_meta(shards, extractor, teacher_sha, sae_sha, teacher_name, sae_name,
                         k, window, batch_size, splits)
        with DirLock(root, "label cache"):
            remove_temporaries(root)
            meta = _resume_or_create(root, meta)
            for split in splits:
                _fill_split(root, meta, split, shards.split(split), extractor, progress)
        log.info("label cache complete in %s", root)
        return cls(root, meta)


META_FIELDS = {"k": int, "window": int, "batch_size": int, "n_latents": int, "hook_name": str,
               "method": str, "ids_dtype": str, "scores_dtype": str, "splits": dict}
"""meta.json's fields and their JSON types, checked on reading."""


def read_meta(root: Path) -> dict[str, Any]:
    """meta.json of a cache directory, with clear errors if absent or of another format."""
    build = Remedy("labels", {"data": "DIR", "out": root}, more=True, verb="build one with")
    with remedied(build):
        return read_versioned_json(
            root / META, FORMAT_VERSION,
            missing=f"no label cache in {root} ({META} missing); fix: {build}",
            fix="rebuild the cache in another root=DIR", fields=META_FIELDS)


def relabel(root: Path) -> Remedy:
    """The fix of a label cache built from other inputs, or damaged: build it again."""
    return Remedy("labels", {"out": root}, more=True, verb="rebuild it with")


def _manifest_of(shards: Any) -> dict[str, Any]:
    if hasattr(shards, "manifest"):
        return shards.manifest
    from cocomix_lens.data import read_manifest

    return read_manifest(shards)


def _check_shards(root: Path, meta: dict[str, Any], manifest: dict[str, Any], fix: str) -> None:
    if meta["tokenizer_sha256"] != manifest.get("tokenizer_sha256"):
        raise ValueError(f"label cache {root} was built on shards of another tokenizer; {fix}")
    for split, info in meta["splits"].items():
        theirs = manifest["splits"].get(split)
        if theirs is not None and (theirs["sha256"], theirs["tokens"]) != (
                info["shard_sha256"], info["tokens"]):
            raise ValueError(f"label cache {root} split {split!r} was built on another token "
                             f"shard (sha256 {info['shard_sha256'][:12]}…, the shards have "
                             f"{theirs['sha256'][:12]}…); {fix}")


def _new_meta(shards: Any, extractor: Any, teacher_sha: str, sae_sha: str, teacher_name: str,
              sae_name: str, k: int, window: int, batch_size: int,
              splits: list[str]) -> dict[str, Any]:
    manifest = shards.manifest
    split_meta = {}
    for split in splits:
        if split not in manifest["splits"]:
            raise ValueError(f"the shards have no split {split!r}; choose from "
                             f"{', '.join(manifest['splits'])}")
        info = manifest["splits"][split]
        n = int(info["tokens"])
        split_meta[split] = {"tokens": n, "shard_sha256": info["sha256"],
                             "windows": -(-n // window), "done_windows": 0}
    if not 1 <= k <= extractor.n_latents:
        raise ValueError(f"k={k} must be between 1 and the SAE's {extractor.n_latents} latents")
    check_teacher(extractor.teacher, manifest, window)
    return {
        "format_version": FORMAT_VERSION, "teacher": teacher_name,
        "teacher_sha256": teacher_sha, "sae": sae_name, "sae_sha256": sae_sha,
        "hook_name": extractor.hook_name, "n_latents": extractor.n_latents,
        "method": extractor.method_name, "k": k, "window": window, "batch_size": batch_size,
        "ids_dtype": ids_dtype(extractor.n_latents).name, "scores_dtype": "float16",
        "tokenizer_sha256": manifest.get("tokenizer_sha256"),
        "loss": "per-window mean next-token CE, incl. the token after the window",
        "splits": split_meta,
    }


def check_teacher(teacher: Any, manifest: dict[str, Any], window: int) -> None:
    """The teacher reads these shards (their `manifest`): same tokenizer (when it records
    one), ids in its vocabulary, and windows that fit its context. Label caches and on-the-fly
    labels (training) both check it."""
    cfg = getattr(teacher, "cfg", None)
    d_vocab, n_ctx = getattr(cfg, "d_vocab", None), getattr(cfg, "n_ctx", None)
    if d_vocab is not None and int(manifest["vocab_size"]) > d_vocab:
        fix = Remedy("prepare", {"tokenizer": "gpt2"}, more=True, verb="e.g. run")
        raise attach(ValueError(f"the shards use {manifest['vocab_size']} token ids but the "
                                f"teacher knows {d_vocab}; fix: prepare the shards with the "
                                f"teacher's tokenizer ({fix})"), fix)
    # Same vocabulary size is not the same tokenizer: compare identities where recorded.
    have = (getattr(teacher, "metadata", None) or {}).get("tokenizer_sha256")
    want = manifest.get("tokenizer_sha256")
    if have and want and have != want:
        fix = Remedy("prepare", {"tokenizer": "file", "tokenizer_file": "TEACHER/tokenizer.json"},
                     more=True, verb="run")
        raise attach(ValueError(f"the teacher was trained with tokenizer {have[:12]}… but the "
                                f"shards were tokenized with {want[:12]}…; fix: prepare the "
                                f"shards with the teacher's tokenizer.json ({fix})"), fix)
    if n_ctx is not None and window > n_ctx:
        raise ValueError(f"window={window} exceeds the teacher's context of {n_ctx} tokens; "
                         f"fix: pass window={n_ctx} or less")


def _resume_or_create(root: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """The meta to continue from: the existing one if it matches, else a fresh cache."""
    if (root / META).is_file() and not _started(read_meta(root)):
        log.info("%s holds an empty label cache; starting it anew", root)
        (root / META).unlink()  # nothing was labelled yet: nothing to protect
    if not (root / META).is_file():
        root.mkdir(parents=True, exist_ok=True)
        for split, info in meta["splits"].items():  # zero-filled files, then the meta
            for kind, dtype in (("ids", meta["ids_dtype"]), ("scores", "float16")):
                _allocate(root / f"{split}.{kind}.bin", info["tokens"] * meta["k"] *
                          np.dtype(dtype).itemsize)
        atomic_write_json(root / META, meta)
        return meta
    old, mine = read_meta(root), _identity(meta)
    check_identity(f"{root} holds a label cache", _identity(old), mine, keys=list(mine),
                   fix="pass another root=DIR, or the same settings to resume it")
    if old["batch_size"] != meta["batch_size"]:
        log.warning("resuming with the cache's batch size %d (not %d) so the result is "
                    "byte-identical", old["batch_size"], meta["batch_size"])
    return old


def _identity(meta: dict[str, Any]) -> dict[str, Any]:
    """What defines a cache: the IDENTITY fields and the shard each split labels."""
    shards = {f"shard_sha256.{split}": info.get("shard_sha256")
              for split, info in meta["splits"].items()}
    return {**{f: meta.get(f) for f in IDENTITY}, **shards}


def _started(meta: dict[str, Any]) -> bool:
    return any(info.get("done_windows", 0) > 0 for info in meta.get("splits", {}).values())


def _allocate(path: Path, nbytes: int) -> None:
    """A zero-filled file of `nbytes` whose blocks are reserved now: writing through a memmap
    into a sparse file on a full disk kills the process with SIGBUS, so ENOSPC must surface
    here, as an error naming the file."""
    with open(path, "wb") as f:
        if nbytes == 0:
            return
        try:
            os.posix_fallocate(f.fileno(), 0, nbytes)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                f.truncate(nbytes)  # a file system without fallocate: sparse, as before
                return
            f.close()
            path.unlink(missing_ok=True)
            raise OSError(err.errno, f"no space left for {nbytes:,} bytes of labels in {path}; "
                          "fix: free disk space or pass another root=DIR") from None


def _memmap(root: Path, split: str, kind: str, dtype: np.dtype, n: int, k: int,
            mode: str) -> np.memmap:
    path = root / f"{split}.{kind}.bin"
    if n == 0:  # numpy cannot map an empty file
        path.touch()
        return np.zeros((0, k), dtype=dtype)  # type: ignore[return-value]
    if mode == "r" and (not path.is_file() or path.stat().st_size != n * k * dtype.itemsize):
        raise attach(ValueError(f"{path} is missing or does not hold {n} x {k} labels; fix: "
                                f"{relabel(root)}"), relabel(root))
    return np.memmap(path, dtype=dtype, mode=mode, shape=(n, k))


def _batches(n_tokens: int, window: int, batch_size: int,
             first_window: int) -> Iterator[list[int]]:
    """Window indices per batch: full windows in fixed groups, the short tail window alone."""
    n_full = n_tokens // window
    for lo in range(first_window, n_full, batch_size):
        yield list(range(lo, min(lo + batch_size, n_full)))
    if n_tokens % window and first_window <= n_full:
        yield [n_full]


def _window_batch(tokens: np.ndarray, wins: list[int], window: int) -> tuple[torch.Tensor, ...]:
    """(x, targets) int64 [batch, len]: window tokens and the token after each (or IGNORE)."""
    n = len(tokens)
    starts = np.asarray(wins, dtype=np.int64) * window
    length = min(window, n - int(starts[0]))  # all windows of a batch have the same length
    x = torch.from_numpy(gather_windows(tokens, starts, length).astype(np.int64))
    # The token after each position; past the shard's end there is none (IGNORE).
    nxt = starts[:, None] + np.arange(1, length + 1)
    y = torch.from_numpy(tokens[np.minimum(nxt, n - 1)].astype(np.int64))
    y[torch.from_numpy(nxt >= n)] = IGNORE
    return x, y


def _fill_split(root: Path, meta: dict[str, Any], split: str, tokens: np.ndarray,
                extractor: Any, progress: Progress | None) -> None:
    info = meta["splits"][split]
    if info["done_windows"] >= info["windows"]:
        return
    window, k = meta["window"], meta["k"]
    ids_map = _memmap(root, split, "ids", np.dtype(meta["ids_dtype"]), info["tokens"], k, "r+")
    scores_map = _memmap(root, split, "scores", np.dtype("float16"), info["tokens"], k, "r+")
    batches = list(_batches(info["tokens"], window, meta["batch_size"], info["done_windows"]))
    desc = f"labels {split}" + (f" (resuming at window {info['done_windows']})"
                                if info["done_windows"] else "")
    for wins in progress(batches, len(batches), desc) if progress else batches:
        x, y = _window_batch(tokens, wins, window)
        ids, scores = extractor.labels(x, k=k, targets=y)
        rows = slice(wins[0] * window, wins[0] * window + x.numel())
        ids_map[rows] = ids.reshape(-1, k).cpu().numpy().astype(ids_map.dtype)
        scores_map[rows] = scores.reshape(-1, k).float().cpu().numpy().astype(np.float16)
        ids_map.flush()
        scores_map.flush()
        info["done_windows"] = wins[-1] + 1  # commit only after the rows are on disk
        atomic_write_json(root / META, meta)
