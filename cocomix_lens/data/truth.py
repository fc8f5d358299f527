"""Per-token ground truth beside token shards, for corpora whose latent variables are known
(the synthetic world): writing it from character spans and reading it back.

A corpus source attaches `meta["spans"] = [[start, end, variable, value], ...]` (character
offsets into the document text) to a Document; `prepare` maps every span to the tokens whose
character range overlaps it, using the tokenizer's offsets, and writes beside the shards:

    truth.json          {"format_version": 1, "columns": [variable, ...] (column order),
                         "variables": {variable: [value, ...]},
                         "splits": {split: {"file": "truth_<split>.npy", "tokens": n}}}
    truth_<split>.npy   int16 [n_tokens, n_variables], aligned with <split>.bin: the index
                        of the token's value in variables[variable], -1 where it has none
                        (EOS tokens, words outside any span of that variable)

    truth = GroundTruth.open("runs/demo/data")
    topic = truth.column("val", "topic")          # int16 [n_tokens]
    truth.values("topic")[topic[123]]             # 'cooking'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cocomix_lens.data.files import atomic_open, atomic_write_json, read_versioned_json
from cocomix_lens.remedy import Remedy, remedied

TRUTH_VERSION = 1
TRUTH_FILE = "truth.json"
SPANS_KEY = "spans"
NONE = -1


def token_ranges(offsets: np.ndarray, starts: np.ndarray,
                 ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token range [first, last) of each character span [starts, ends): the tokens whose
    character range overlaps it. offsets: int [n_tokens, 2] (start, end), in text order."""
    first = np.searchsorted(offsets[:, 1], starts, side="right")
    last = np.searchsorted(offsets[:, 0], ends, side="left")
    return first, np.maximum(last, first)


class TruthWriter:
    """Collects token intervals per split while `prepare` writes shards; `finish` writes
    truth.json and truth_<split>.npy (or removes stale ones when no document had spans)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.values: dict[str, dict[str, int]] = {}
        self.intervals: dict[str, list[np.ndarray]] = {}  # split -> [k, 4] (var, a, b, value)
        self.used = False
        self._ids: dict[tuple[str, str], tuple[int, int]] = {}

    def _index(self, variable: str, value: str) -> tuple[int, int]:
        """(column, value index) of a pair, assigning new ones in order of appearance."""
        vals = self.values.setdefault(variable, {})
        vals[value] = len(vals)
        pair = (list(self.values).index(variable), vals[value])
        self._ids[(variable, value)] = pair
        return pair

    def add(self, split: str, offset: int, token_offsets: Sequence[tuple[int, int]],
            spans: Sequence[Sequence[Any]]) -> None:
        """Record the spans of one document whose tokens start at `offset` in the split."""
        self.used = True
        if not spans or not token_offsets:
            return
        offs = np.array(token_offsets, dtype=np.int64).reshape(-1, 2)
        get = self._ids.get
        rows = np.array([(a, b, *(get((v, x)) or self._index(v, x))) for a, b, v, x in spans],
                        dtype=np.int64)  # [k, 4] (start, end, column, value)
        first, last = token_ranges(offs, rows[:, 0], rows[:, 1])
        rows = np.stack([rows[:, 2], first + offset, last + offset, rows[:, 3]], axis=1)
        self.intervals.setdefault(split, []).append(rows)

    def finish(self, tokens: dict[str, int]) -> dict[str, Any] | None:
        """Write the files for splits of `tokens` {split: n_tokens}; the truth.json content,
        or None (and no truth files) when no document carried spans."""
        if not self.used:
            for p in [self.root / TRUTH_FILE, *self.root.glob("truth_*.npy")]:
                p.unlink(missing_ok=True)
            return None
        variables = {v: list(vals) for v, vals in self.values.items()}
        splits = {}
        for split, n in tokens.items():
            arr = _fill(n, len(variables), self.intervals.get(split, []))
            with atomic_open(self.root / f"truth_{split}.npy", "wb") as f:
                np.save(f, arr)
            splits[split] = {"file": f"truth_{split}.npy", "tokens": n}
        meta = {"format_version": TRUTH_VERSION, "columns": list(variables),
                "variables": variables, "splits": splits}
        atomic_write_json(self.root / TRUTH_FILE, meta)
        return meta


def _fill(n_tokens: int, n_vars: int, chunks: list[np.ndarray]) -> np.ndarray:
    """int16 [n_tokens, n_vars] from interval rows (var, first, last, value); later
    intervals of a variable overwrite earlier ones where they overlap."""
    arr = np.full((n_tokens, n_vars), NONE, dtype=np.int16)
    if not chunks:
        return arr
    rows = np.concatenate(chunks)
    lengths = rows[:, 2] - rows[:, 1]
    keep = lengths > 0
    rows, lengths = rows[keep], lengths[keep]
    # Every covered (token, variable) pair at once: token = first + 0..length-1.
    base = np.repeat(rows[:, 1] - np.cumsum(lengths) + lengths, lengths)
    tok = base + np.arange(int(lengths.sum()))
    arr[tok, np.repeat(rows[:, 0], lengths)] = np.repeat(rows[:, 3], lengths)
    return arr


class GroundTruth:
    """Read access to the ground truth of a shard directory."""

    def __init__(self, root: Path, meta: dict[str, Any]) -> None:
        self.root = root
        self.meta = meta
        # JSON objects come back key-sorted: the column order is its own list.
        self.columns: list[str] = meta["columns"]
        self.variables: dict[str, list[str]] = {c: meta["variables"][c] for c in self.columns}
        self._arrays: dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, root: str | Path) -> GroundTruth:
        root = Path(root)
        world = Remedy("prepare", {"corpus": "world"}, more=True, verb="run")
        with remedied(world):
            meta = read_versioned_json(
                root / TRUTH_FILE, TRUTH_VERSION,
                missing=f"no {TRUTH_FILE} in {root}: its corpus has no known latent "
                        f"variables; fix: {world} for a corpus that has them",
                fix=Remedy("prepare", {"out": root, "force": True}))
        return cls(root, meta)

    @staticmethod
    def exists(root: str | Path) -> bool:
        return (Path(root) / TRUTH_FILE).is_file()

    def array(self, split: str) -> np.ndarray:
        """int16 [n_tokens, n_variables] (memory-mapped), columns in `columns` order."""
        if split not in self.meta["splits"]:
            raise ValueError(f"no ground truth for split {split!r}; choose one of: "
                             f"{', '.join(self.meta['splits'])}")
        if split not in self._arrays:
            self._arrays[split] = np.load(self.root / self.meta["splits"][split]["file"],
                                          mmap_mode="r")
        return self._arrays[split]

    def column(self, split: str, variable: str) -> np.ndarray:
        """int16 [n_tokens]: value index of `variable` at each token, -1 for none."""
        if variable not in self.variables:
            raise ValueError(f"unknown variable {variable!r}; choose one of: "
                             f"{', '.join(self.variables)}")
        return np.asarray(self.array(split)[:, self.columns.index(variable)])

    def values(self, variable: str) -> list[str]:
        return self.variables[variable]
