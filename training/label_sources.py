"""Where a batch's concept labels come from: the label cache or a ConceptExtractor on the fly.

Both give int64 labels [batch, seq_len, k] aligned with the input windows x. The trainer only
sees the `LabelSource` protocol; `as_label_source` adapts whatever the caller passed.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor


class LabelSource(Protocol):
    n_concepts: int | None
    """Size of the concept vocabulary (the SAE's d_sae), if known."""
    align: int
    """Window starts must be multiples of this (a label-cache window), 1 if free."""

    def get(self, split: str, starts: np.ndarray, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Labels [batch, seq_len, k] int64 on x.device for windows x starting at `starts`
        (y: their next tokens, which the teacher's loss scores)."""


class CachedLabels:
    """Labels read from a `cocomix_lens.concepts.LabelCache`."""

    def __init__(self, cache: Any, k: int):
        self.cache, self.k = cache, k
        self.align = int(cache.window)
        self.n_concepts = int(cache.meta["n_latents"])
        have = cache.k
        if int(have) < k:
            raise ValueError(f"the label cache holds k={have} labels per token but k_attr={k}; "
                             f"rebuild it with k >= {k} or pass --concept.k_attr {have}")

    def get(self, split: str, starts: np.ndarray, x: Tensor, y: Tensor | None = None) -> Tensor:
        labels = self.cache.labels(split, starts, x.shape[1])[..., : self.k]
        return labels.to(device=x.device, dtype=torch.long)


class ExtractorLabels:
    """Labels computed from the teacher on the student's own window (`extractor.labels`)."""

    align = 1

    def __init__(self, extractor: Any, k: int):
        self.extractor, self.k = extractor, k
        self.n_concepts = int(extractor.n_latents) if hasattr(extractor, "n_latents") else None

    def to(self, device: torch.device) -> ExtractorLabels:
        """Move the teacher and SAE next to the student."""
        self.extractor.teacher.to(device)
        self.extractor.sae.to(device)
        return self

    def get(self, split: str, starts: np.ndarray, x: Tensor, y: Tensor | None = None) -> Tensor:
        # With y the teacher's loss also scores the window's last position, as the cache does.
        ids, _scores = self.extractor.labels(x, k=self.k, targets=y)
        return ids.to(device=x.device, dtype=torch.long)


class WindowsOnly:
    """No labels, only the alignment of a label cache's windows: an NTP run given this draws
    the very windows a CoCoMix run on the cache draws, without waiting for the cache."""

    n_concepts = None

    def __init__(self, align: int):
        self.align = int(align)

    def get(self, split: str, starts: np.ndarray, x: Tensor, y: Tensor | None = None) -> Tensor:
        raise ValueError("this run has no concept labels (WindowsOnly aligns windows only); "
                         "fix: pass a label cache or a ConceptExtractor for a concept objective")


def as_label_source(obj: Any, k: int) -> LabelSource | None:
    """None, a LabelSource, a LabelCache or a ConceptExtractor -> a LabelSource (or None)."""
    from cocomix_lens.concepts import ConceptExtractor
    from cocomix_lens.concepts.label_cache import LabelCache

    if obj is None or hasattr(obj, "get") and hasattr(obj, "align"):
        return obj
    if isinstance(obj, LabelCache):
        return CachedLabels(obj, k)
    if isinstance(obj, ConceptExtractor) or hasattr(obj, "readout"):
        return ExtractorLabels(obj, k)
    if hasattr(obj, "labels"):  # any other object with the LabelCache interface
        return CachedLabels(obj, k)
    raise ValueError(f"labels={type(obj).__name__} is not a LabelCache, ConceptExtractor or "
                     "LabelSource; pass one of those")

