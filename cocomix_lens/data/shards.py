"""Token shards on disk: writing them (`ShardWriter`) and reading them (`TokenShards`).

Layout of a shard directory (format_version 1):
    train.bin, val.bin      flat token ids, np.uint16 (np.uint32 if vocab > 65,535),
                            every document followed by EOS
    docs_<split>.jsonl      per document {"id", "start", "end", "meta"}: tokens [start, end)
                            of the split's .bin are the document (EOS at `end`)
    tokenizer.json          HF `tokenizers` file
    manifest.json           format_version, vocab_size, dtype, eos_id, tokenizer_sha256,
                            splits {name: {file, docs_file, tokens, documents, sha256}},
                            corpus and inputs fingerprints
"""

from __future__ import annotations

import hashlib
import json
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from tokenizers import Tokenizer

from cocomix_lens.data.documents import SPLITS, Document
from cocomix_lens.data.files import (
    TOKENIZER_FILE,
    CorruptFileError,
    atomic_open,
    read_versioned_json,
    sha256_file,
)
from cocomix_lens.data.tokenizer import check_tokenizer, load_tokenizer
from cocomix_lens.remedy import Remedy, attach, remedied

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def shard_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id fits (vocab <= 65,535, per the format), else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 65_535 else np.uint32)


class _SplitWriter:
    """Appends documents to one split's .bin and docs .jsonl, hashing as it goes."""

    def __init__(self, bin_f: IO[bytes], docs_f: IO[str], dtype: np.dtype, eos: int) -> None:
        self.bin_f, self.docs_f, self.dtype, self.eos = bin_f, docs_f, dtype, eos
        self.sha = hashlib.sha256()
        self.tokens = 0
        self.documents = 0

    def add(self, doc: Document, ids: list[int]) -> None:
        blob = np.asarray(ids + [self.eos], dtype=self.dtype).tobytes()
        self.bin_f.write(blob)
        self.sha.update(blob)
        row = {"id": doc.id, "start": self.tokens, "end": self.tokens + len(ids),
               "meta": doc.meta}
        self.docs_f.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.tokens += len(ids) + 1
        self.documents += 1

    def summary(self, split: str) -> dict[str, Any]:
        return {"file": f"{split}.bin", "docs_file": f"docs_{split}.jsonl",
                "tokens": self.tokens, "documents": self.documents,
                "sha256": self.sha.hexdigest()}


class ShardWriter:
    """Context manager writing all splits of a shard directory; files appear (atomically)
    only when the block exits without error. The manifest is written separately, last."""

    def __init__(self, root: str | Path, vocab_size: int, eos_id: int) -> None:
        self.root = Path(root)
        self.dtype = shard_dtype(vocab_size)
        self.eos = eos_id
        self._stack = ExitStack()
        self.splits: dict[str, _SplitWriter] = {}

    def __enter__(self) -> ShardWriter:
        self.root.mkdir(parents=True, exist_ok=True)
        for split in SPLITS:
            bin_f = self._stack.enter_context(atomic_open(self.root / f"{split}.bin", "wb"))
            docs_f = self._stack.enter_context(atomic_open(self.root / f"docs_{split}.jsonl",
                                                           "w"))
            self.splits[split] = _SplitWriter(bin_f, docs_f, self.dtype, self.eos)
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return self._stack.__exit__(*exc)

    def add(self, split: str, doc: Document, ids: list[int]) -> None:
        self.splits[split].add(doc, ids)

    def summary(self) -> dict[str, dict[str, Any]]:
        return {name: w.summary(name) for name, w in self.splits.items()}


class TokenShards:
    """Read access to a prepared shard directory: `TokenShards.open(dir)`."""

    def __init__(self, root: Path, manifest: dict[str, Any], tokenizer: Tokenizer) -> None:
        self.root = root
        self.manifest = manifest
        self.tokenizer = tokenizer
        self.dtype = np.dtype(manifest["dtype"])
        self._maps: dict[str, np.memmap] = {}
        self._starts: dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, root: str | Path, verify: bool = False) -> TokenShards:
        """Open and sanity-check `root` (tokenizer hash, file sizes; with `verify`, the
        sha256 of every shard)."""
        root = Path(root)
        manifest = read_manifest(root)
        tok = load_tokenizer(root / TOKENIZER_FILE)
        check_tokenizer(manifest["tokenizer_sha256"], tok, what=f"token shards in {root}")
        shards = cls(root, manifest, tok)
        for split in manifest["splits"]:
            shards._check(split, verify)
        return shards

    def _check(self, split: str, verify: bool) -> None:
        info = self.manifest["splits"][split]
        path = self.root / info["file"]
        remedy = reprepare(self.root)
        with remedied(remedy):
            if not path.is_file() or path.stat().st_size != info["tokens"] * self.dtype.itemsize:
                raise ValueError(f"{path} is missing or does not hold {info['tokens']} tokens; "
                                 f"fix: {remedy}")
            if verify and sha256_file(path) != info["sha256"]:
                raise ValueError(f"{path} does not match the sha256 in its manifest; fix: "
                                 f"{remedy}")

    @property
    def vocab_size(self) -> int:
        return int(self.manifest["vocab_size"])

    @property
    def eos_id(self) -> int:
        return int(self.manifest["eos_id"])

    @property
    def tokenizer_sha256(self) -> str:
        return str(self.manifest["tokenizer_sha256"])

    def n_tokens(self, split: str) -> int:
        return int(self._info(split)["tokens"])

    def _info(self, split: str) -> dict[str, Any]:
        if split not in self.manifest["splits"]:
            raise ValueError(f"no split {split!r} in {self.root}; "
                             f"choose one of: {', '.join(self.manifest['splits'])}")
        return self.manifest["splits"][split]

    def split(self, split: str) -> np.memmap:
        """Read-only memmap [n_tokens] of the split's token ids."""
        if split not in self._maps:
            info = self._info(split)
            self._maps[split] = np.memmap(self.root / info["file"], dtype=self.dtype,
                                          mode="r", shape=(info["tokens"],))
        return self._maps[split]

    def _check_whole(self, split: str) -> None:
        """The split's file still holds every token: reading a memmapped page a truncation
        removed kills the process with SIGBUS, so a file cut while in use is an error first."""
        path = self.root / self._info(split)["file"]
        want = self.n_tokens(split) * self.dtype.itemsize
        have = path.stat().st_size if path.exists() else 0
        if have < want:
            remedy = reprepare(self.root)
            raise attach(CorruptFileError(f"{path} was cut to {have:,} of its {want:,} bytes "
                                          f"while in use; fix: {remedy}, then resume"), remedy)

    def documents(self, split: str) -> list[dict[str, Any]]:
        """Per-document rows {"id", "start", "end", "meta"} in shard order."""
        with open(self.root / self._info(split)["docs_file"], encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def document_of(self, split: str, positions: np.ndarray | list[int]) -> np.ndarray:
        """Index into `documents(split)` of the document holding each token position
        (its trailing EOS included), np.int64 of the shape of `positions`."""
        if split not in self._starts:
            self._starts[split] = np.array([d["start"] for d in self.documents(split)],
                                           dtype=np.int64)
        pos = np.asarray(positions, dtype=np.int64)
        if pos.size and (pos.min() < 0 or pos.max() >= self.n_tokens(split)):
            raise ValueError(f"token positions must lie in [0, {self.n_tokens(split)}) for "
                             f"split {split!r}")
        return np.searchsorted(self._starts[split], pos, side="right") - 1

    def batch(self, split: str, starts: np.ndarray | list[int],
              seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows of seq_len+1 tokens at `starts` -> (x, y), int64 [batch, seq_len] each,
        y = x shifted by one token."""
        self._check_whole(split)
        win = gather_windows(self.split(split), starts, seq_len + 1,
                             where=f"seq_len {seq_len} on split {split!r}",
                             fix="build them with WindowSampler(n_tokens=shards.n_tokens("
                                 "split), ...)")
        win = torch.from_numpy(win.astype(np.int64))
        return win[:, :-1], win[:, 1:]

    def decode(self, ids: Any) -> str:
        """Token ids -> text, special tokens kept (so EOS shows as <|endoftext|>)."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)


def gather_windows(arr: np.ndarray, starts: Any, length: int, *, where: str = "",
                   fix: str = "pass starts in range") -> np.ndarray:
    """arr[s : s + length] for each s in `starts`, stacked: [len(starts), length, ...].

    The one window gather of token shards, label caches and activation collection; starts
    outside [0, len(arr) - length] are a one-line ValueError naming `where` and `fix`."""
    starts = np.asarray(starts, dtype=np.int64)
    if starts.size and (starts.min() < 0 or starts.max() + length > len(arr)):
        raise ValueError(f"window starts must lie in [0, {len(arr) - length}] for "
                         f"{where or f'windows of {length}'}; fix: {fix}")
    return arr[starts[:, None] + np.arange(length)]


# What the readers use of a manifest, checked on reading (a hand-edited "eos_id": "x" is one
# line naming manifest.json, not a failure later).
MANIFEST_FIELDS = {"dtype": str, "eos_id": int, "vocab_size": int, "tokenizer_sha256": str,
                   "splits": dict}


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The manifest of a shard directory; clear errors if absent or of another format."""
    make = Remedy("prepare", {"out": root}, verb="run")
    with remedied(make):
        return read_versioned_json(
            Path(root) / MANIFEST, FORMAT_VERSION,
            missing=f"no {MANIFEST} in {root}; fix: {make} first", fix=reprepare(root),
            fields=MANIFEST_FIELDS)


def reprepare(root: str | Path) -> Remedy:
    """The fix of damaged shards: prepare them again into the same directory."""
    return Remedy("prepare", {"out": root, "force": True})
