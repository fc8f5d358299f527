"""Which corpus metadata a concept concentrates on: per (concept, key=value) share and lift.

For a categorical metadata key of the documents (e.g. the wiki `topic`), each labelled token
inherits its document's value(s). For concept c and value v:
    count  = tokens labelled c whose document has v
    share  = count / tokens labelled c               P(v | c)
    base   = tokens whose document has v / tokens    P(v)
    lift   = share / base                            > 1: c is over-represented in v
Computed by one bincount over (concept, value) pairs per key, so no Python loop runs over
tokens or concepts. List-valued keys (several topics per document) count a token once per
value. Keys with a single value, or nearly one value per document (titles), say nothing about
concentration and are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class MetaKey:
    """One categorical key: its values and the [docs, V] 0/1 indicator of each document."""

    name: str
    values: list[str]
    indicator: np.ndarray  # [n_docs, V] float32


def categorical_keys(docs: list[dict[str, Any]], max_values: int = 64) -> list[MetaKey]:
    """Metadata keys of `docs` (rows with a "meta" dict) usable for concentration."""
    names = sorted({k for d in docs for k in (d.get("meta") or {})})
    keys = []
    for name in names:
        per_doc = [_values(d.get("meta", {}).get(name)) for d in docs]
        distinct = sorted({v for vs in per_doc for v in vs})
        if not 2 <= len(distinct) <= min(max_values, max(len(docs) // 2, 2)):
            continue
        col = {v: i for i, v in enumerate(distinct)}
        ind = np.zeros((len(docs), len(distinct)), dtype=np.float32)
        for row, vs in enumerate(per_doc):
            ind[row, [col[v] for v in vs]] = 1.0
        keys.append(MetaKey(name, distinct, ind))
    return keys


def _values(raw: Any) -> list[str]:
    """A metadata value as a list of category strings ([] for missing or non-categorical)."""
    if isinstance(raw, (list, tuple)):
        return sorted({str(v) for v in raw if isinstance(v, (str, int, bool))})
    if isinstance(raw, (str, int, bool)) and raw != "":
        return [str(raw)]
    return []


def concentration(labels: np.ndarray, doc_of: np.ndarray, n_docs: int, n_concepts: int,
                  keys: list[MetaKey], min_count: int = 5, top: int = 3) -> dict[str, np.ndarray]:
    """Columns {concept, key, value, count, share, lift}: the `top` values by lift per concept.

    labels [n_tokens, k] concept ids (negative = no label); doc_of [n_tokens] document index
    of each token. Values with fewer than `min_count` labelled tokens of c are left out, so
    a concept seen twice in one document does not get a huge lift.
    """
    valid = labels >= 0
    doc = np.broadcast_to(doc_of[:, None], labels.shape)[valid].astype(np.int64)
    concept = labels[valid].astype(np.int64)
    per_concept = np.bincount(concept, minlength=n_concepts).astype(np.float64)  # [C]
    doc_tokens = np.bincount(doc_of, minlength=n_docs).astype(np.float64)  # [docs]
    parts = []
    for key in keys:
        counts = _value_counts(concept, doc, key.indicator, n_concepts)  # [C, V]
        base = (doc_tokens @ key.indicator) / max(doc_tokens.sum(), 1.0)  # [V]
        share = counts / np.maximum(per_concept, 1.0)[:, None]
        lift = share / np.where(base > 0, base, np.inf)
        lift = np.where(counts >= min_count, lift, -np.inf)
        best = np.argsort(-lift, axis=1, kind="stable")[:, :top]  # [C, top]
        c, r = np.nonzero(np.isfinite(np.take_along_axis(lift, best, 1)))
        j = best[c, r]
        parts.append({"concept": c, "key": np.full(len(c), key.name, dtype=object),
                      "value": np.asarray(key.values, dtype=object)[j],
                      "count": counts[c, j].astype(np.int64), "share": share[c, j],
                      "lift": lift[c, j]})
    names = ("concept", "key", "value", "count", "share", "lift")
    if not parts:
        return {n: np.array([], dtype=object if n in ("key", "value") else float) for n in names}
    return {n: np.concatenate([p[n] for p in parts]) for n in names}


def _value_counts(concept: np.ndarray, doc: np.ndarray, indicator: np.ndarray,
                  n_concepts: int) -> np.ndarray:
    """[C, V] labelled tokens of each concept per value: every (token, value of its document)
    pair counted once, via one bincount (a document with several values repeats its tokens)."""
    n_values = indicator.shape[1]
    pair_doc, pair_value = np.nonzero(indicator)  # sorted by document
    per_doc = np.bincount(pair_doc, minlength=len(indicator))
    first = np.concatenate([[0], np.cumsum(per_doc)[:-1]])
    rep = per_doc[doc]  # values of each labelled token's document
    offset = np.arange(rep.sum()) - np.repeat(np.cumsum(rep) - rep, rep)
    values = pair_value[np.repeat(first[doc], rep) + offset]
    flat = np.repeat(concept, rep) * n_values + values
    return np.bincount(flat, minlength=n_concepts * n_values).reshape(n_concepts, n_values)
