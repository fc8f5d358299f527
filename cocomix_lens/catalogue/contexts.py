"""Max-activating contexts as text: the active token, a window around it, its document.

A context never crosses a document boundary: it is clipped to the document holding the
token (its trailing <|endoftext|> excluded unless the token is that EOS itself).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def render_contexts(positions: np.ndarray, tokens: np.ndarray, shards: Any, split: str,
                    before: int, after: int) -> dict[str, np.ndarray]:
    """Columns {document, left, token, right} (text) for token `positions` [M] of `split`.

    Each distinct position is decoded once (many concepts share their top positions).
    """
    uniq, inverse = np.unique(positions, return_inverse=True)
    docs = shards.documents(split)
    doc_idx = shards.document_of(split, uniq)
    start = np.array([d["start"] for d in docs], dtype=np.int64)[doc_idx]
    end = np.array([d["end"] for d in docs], dtype=np.int64)[doc_idx]
    lo = np.maximum(uniq - before, start)
    hi = np.minimum(uniq + after, np.maximum(end - 1, uniq))  # inclusive
    spans = ([tokens[a:p].tolist() for a, p in zip(lo, uniq)],
             [[int(tokens[p])] for p in uniq],
             [tokens[p + 1:b + 1].tolist() for p, b in zip(uniq, hi)])
    tok = shards.tokenizer
    left, mid, right = (np.asarray(tok.decode_batch(s, skip_special_tokens=False), dtype=object)
                        for s in spans)
    doc_ids = np.asarray([str(docs[i]["id"]) for i in doc_idx], dtype=object)
    return {"document": doc_ids[inverse], "left": left[inverse], "token": mid[inverse],
            "right": right[inverse]}


def quantile_examples(positions: np.ndarray, concepts: np.ndarray, values: np.ndarray,
                      n_bins: int, per_bin: int) -> pd.DataFrame:
    """Examples across a concept's range (Neuronpedia's quantile-binned contexts): each
    concept's entries split into `n_bins` equal-count bins of its value (0 = lowest), the
    first `per_bin` positions of each bin kept. Columns concept, rank (= bin), value,
    position."""
    df = pd.DataFrame({"concept": concepts, "value": values, "position": positions})
    if not len(df):
        return df.assign(rank=np.zeros(0, dtype=np.int64))
    pct = df.groupby("concept")["value"].rank(method="first", pct=True).to_numpy()
    df["rank"] = np.minimum((pct * n_bins).astype(np.int64), n_bins - 1)
    df = df.sort_values(["concept", "rank", "position"], kind="stable")
    return df.groupby(["concept", "rank"]).head(per_bin).reset_index(drop=True)


def mark(left: str, token: str, right: str, marks: tuple[str, str] = ("[[", "]]")) -> str:
    """One line of context with the active token marked: 'the [[cat]] sat'."""
    text = f"{left}{marks[0]}{token}{marks[1]}{right}"
    return " ".join(text.split())  # newlines and runs of spaces would break a table row
