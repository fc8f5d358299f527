"""Searching the catalogue by text: names, promoted tokens, fired-on tokens and contexts.

Matching is case-insensitive; each kind of hit adds to a concept's score, so a concept whose
tokens *are* the query ranks above one whose contexts merely contain it:
    exact token (promoted by SAE decoder or compressor row, or fired on)   4
    name contains the query                                                  3
    a token contains the query                                               2
    the active token of a context is the query                               1.5
    a context's text contains the query                                      1
Dead concepts come after live ones; ties go to the concept the student predicts more often
(prediction_density).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from cocomix_lens.catalogue.store import Catalogue

TOKEN_LISTS = ("teacher_tokens", "student_tokens", "fires_on")
WEIGHTS = {"token": 4.0, "name": 3.0, "token~": 2.0, "context token": 1.5, "context": 1.0}
SHOWN = ["name", "score", "matched", "prediction_density", "label_density", "fires_on",
         "teacher_tokens", "student_tokens", "meta_value"]


def search(cat: Catalogue, query: str, limit: int | None = 20) -> pd.DataFrame:
    """Concepts matching `query`, best first: SHOWN columns, indexed by concept id."""
    q = str(query).strip().casefold()
    if not q:
        raise ValueError("empty search query; pass a word to look for, e.g. 'river'")
    concepts = cat.concepts
    hits: dict[str, pd.Index] = {"name": concepts.index[
        concepts["name"].str.casefold().str.contains(q, regex=False)]}
    tokens = _exploded_tokens(cat)
    hits["token"] = pd.Index(tokens.index[tokens == q].unique())
    hits["token~"] = pd.Index(tokens.index[tokens.str.contains(q, regex=False)].unique())
    ctx = cat.contexts
    active = ctx["token"].str.strip().str.casefold()
    hits["context token"] = pd.Index(ctx.loc[active == q, "concept"].unique())
    text = (ctx["left"] + ctx["token"] + ctx["right"]).str.casefold()
    hits["context"] = pd.Index(ctx.loc[text.str.contains(q, regex=False), "concept"].unique())
    score = pd.Series(0.0, index=concepts.index)
    matched = pd.Series([[] for _ in range(len(concepts))], index=concepts.index)
    for kind, idx in hits.items():
        score.loc[idx] += WEIGHTS[kind]
        for c in idx:  # only the (few) matching concepts
            matched[c].append(kind)
    found = concepts.assign(score=score, matched=matched.map(", ".join))
    found = found[found["score"] > 0]
    # live concepts first: a dead one's tokens come from weights the student never used
    found = found.sort_values(["dead", "score", "prediction_density"],
                              ascending=[True, False, False], kind="stable")
    return found[SHOWN].head(limit) if limit else found[SHOWN]


def _exploded_tokens(cat: Catalogue) -> pd.Series:
    """Every token of TOKEN_LISTS, stripped and case-folded, indexed by concept (cached)."""
    cached = getattr(cat, "_search_tokens", None)
    if cached is None:
        lists = [cat.concepts[col].explode().dropna() for col in TOKEN_LISTS]
        cached = pd.concat(lists).astype(str).str.strip().str.casefold()
        cached = cached[cached != ""]
        cat._search_tokens = cached
    return cached
