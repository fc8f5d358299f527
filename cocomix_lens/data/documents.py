"""Documents: the unit `prepare` tokenizes and `docs_<split>.jsonl` records, and the splits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SPLITS = ("train", "val")


@dataclass(frozen=True)
class Document:
    """One document. `id` is stable across runs and decides the split; `meta` is kept
    next to the shard offsets (docs_<split>.jsonl) for later concept analysis."""

    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
