"""The corpus-source registry and the deterministic train/val split.

A corpus source yields `Document`s (stable id, text, metadata such as the wiki topic) and a
JSON fingerprint that changes whenever its documents would change; `prepare` uses the
fingerprint to tell a re-run (no-op) from new inputs (needs --force). Sources register
themselves by name (`wiki`, `text`, `hf`) so callers pick one with a string.
"""

from __future__ import annotations

import abc
import hashlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from cocomix_lens.data.documents import Document


class CorpusSource(abc.ABC):
    """A named stream of documents. Subclasses take their options as constructor kwargs."""

    name: str = ""

    @abc.abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """JSON-able description that changes iff the documents would change."""

    @abc.abstractmethod
    def documents(self) -> Iterator[Document]:
        """Yield the documents in a deterministic order."""

    def tokenizer_documents(self) -> Iterator[Document]:
        """Documents a trained tokenizer learns from (the caller keeps the train split):
        all by default; a closed-vocabulary source may return a prefix that teaches the same."""
        return self.documents()

    def num_documents(self) -> int | None:
        """Number of documents if cheaply known (sizes the progress bar), else None."""
        return None


SOURCES: dict[str, type[CorpusSource]] = {}


def register_source(name: str) -> Callable[[type[CorpusSource]], type[CorpusSource]]:
    """Class decorator: make a `CorpusSource` subclass available as `open_corpus(name)`."""

    def deco(cls: type[CorpusSource]) -> type[CorpusSource]:
        cls.name = name
        SOURCES[name] = cls
        return cls

    return deco


def open_corpus(name: str, /, **options: Any) -> CorpusSource:
    """Build the corpus source registered as `name` with its options (None values dropped)."""
    if name not in SOURCES:
        raise ValueError(f"unknown corpus {name!r}; choose one of: {', '.join(sorted(SOURCES))}")
    cls = SOURCES[name]
    options = {k: v for k, v in options.items() if v is not None}
    params = inspect.signature(cls).parameters
    bad = sorted(set(options) - set(params))
    if bad:
        allowed = ", ".join(p for p in params) or "none"
        raise ValueError(f"corpus {name!r} does not take option(s) {', '.join(bad)}; "
                         f"it takes: {allowed}")
    return cls(**options)


def split_of(doc_id: str, val_fraction: float, seed: int = 0) -> str:
    """'val' or 'train' from a hash of (seed, id): independent of document order and of the
    rest of the corpus, so adding documents never moves an existing one across the split."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}; "
                         "pass e.g. --val-fraction 0.02")
    digest = hashlib.sha256(f"{seed}:{doc_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "val" if u < val_fraction else "train"
