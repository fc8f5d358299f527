"""Searching the catalogue by meaning: explanations, ground-truth values, tokens and contexts,
with word forms folded ("farmer" finds a concept explained by "farming"); and by example.

Every word of the query is folded (catalogue.words); each kind of hit adds to a concept's
score, so a concept that *tracks* the query ranks above one whose contexts merely mention it:
    ground-truth value it tracks ("topic=farming") holds the query      10 x its F1
    explanation holds every query word                                  4 (partly: pro rata)
    a promoted or fired-on token is a query word                        2
    its name holds the query text                                       2
    the active token of one of its contexts is a query word             1.5
    the text of one of its contexts holds every query word              1
Dead concepts come after live ones; ties go to the concept the student predicts more often.

    cat.search("farmers")                      # by meaning
    by_example(student, ["The goat ate hay."], cat)  # concepts predicted more on these texts
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cocomix_lens.catalogue.words import fold, fold_text

# A `Catalogue` comes in typed Any: cocomix_lens.catalogue.store imports this module, and an import
# back, even for type checkers only, would close a circle (tests/test_import_rules.py).

TOKEN_LISTS = ("teacher_tokens", "student_tokens", "fires_on")
WEIGHTS = {"truth": 10.0, "explanation": 4.0, "token": 2.0, "name": 2.0,
           "context token": 1.5, "context": 1.0}
SHOWN = ["name", "explanation", "detection", "score", "matched", "truth_f1",
         "prediction_density", "label_density", "teacher_tokens", "student_tokens"]


def search(cat: Any, query: str, limit: int | None = 20) -> pd.DataFrame:
    """Concepts matching `query`, best first: SHOWN columns, indexed by concept id."""
    raw = str(query).strip().casefold()
    words = {w for w in fold_text(raw) if w}
    if not raw:
        raise ValueError("empty search query; pass words to look for, e.g. 'farming'")
    concepts = cat.concepts
    scores = {"truth": _truth_hits(concepts, raw, words),
              "explanation": _explanation_hits(concepts, words),
              "token": _token_hits(cat, words),
              "name": pd.Series(concepts["name"].str.casefold().str.contains(
                  raw, regex=False).astype(float), index=concepts.index)}
    scores.update(_context_hits(cat, words))
    score = pd.Series(0.0, index=concepts.index)
    matched = [[] for _ in range(len(concepts))]
    for kind, hit in scores.items():
        hit = hit.reindex(concepts.index, fill_value=0.0)
        score += WEIGHTS[kind] * hit
        for i in np.flatnonzero(hit.to_numpy() > 0):
            matched[i].append(kind)
    found = concepts.assign(score=score, matched=[", ".join(m) for m in matched])
    found = found[found["score"] > 0]
    # live concepts first: a dead one's tokens come from weights the student never used
    found = found.sort_values(["dead", "score", "prediction_density"],
                              ascending=[True, False, False], kind="stable")
    return found[SHOWN].head(limit) if limit else found[SHOWN]


def _truth_hits(concepts: pd.DataFrame, raw: str, words: set[str]) -> pd.Series:
    """F1 of the concepts whose ground-truth match is the query ('farming', 'topic=farming')
    or holds it ('topic=' matches every topic)."""
    truth = concepts["truth"].fillna("").astype(str)
    value = truth.str.split("=", n=1).str[-1]
    folded = value.map(lambda v: {w for w in fold_text(v) if w})
    hit = (truth != "") & ((truth.str.casefold().str.contains(raw, regex=False))
                           | folded.map(lambda f: bool(f) and f <= words))
    return hit * concepts["truth_f1"].fillna(0.0)


def _explanation_hits(concepts: pd.DataFrame, words: set[str]) -> pd.Series:
    """Share of the query's words its explanation holds."""
    if not words:
        return pd.Series(0.0, index=concepts.index)
    said = concepts["explanation"].fillna("").map(lambda e: set(fold_text(e)))
    return said.map(lambda s: len(words & s) / len(words))


def _token_hits(cat: Any, words: set[str]) -> pd.Series:
    tokens = _folded_tokens(cat)
    return pd.Series(1.0, index=tokens.index[tokens.isin(words)].unique())


def _context_hits(cat: Any, words: set[str]) -> dict[str, pd.Series]:
    ctx = cat.contexts
    if not words or not len(ctx):
        return {}
    active = ctx["token"].map(fold).isin(words)
    text = (ctx["left"] + ctx["token"] + ctx["right"]).map(lambda t: set(fold_text(t)))
    whole = text.map(words.issubset)
    return {"context token": pd.Series(1.0, index=ctx.loc[active, "concept"].unique()),
            "context": pd.Series(1.0, index=ctx.loc[whole, "concept"].unique())}


def _folded_tokens(cat: Any) -> pd.Series:
    """Every token of TOKEN_LISTS folded, indexed by concept (cached on the catalogue)."""
    cached = getattr(cat, "_search_tokens", None)
    if cached is None:
        lists = [cat.concepts[col].explode().dropna() for col in TOKEN_LISTS]
        cached = pd.concat(lists).astype(str).map(fold)
        cached = cached[cached != ""]
        cat._search_tokens = cached
    return cached


def by_example(model: Any, texts: list[str], catalogue: Any,
               limit: int | None = 20) -> pd.DataFrame:
    """Concepts the student predicts more on `texts` than on background (the validation
    text the catalogue was built on), best first, like Neuronpedia's search by inference.
    Columns: name, explanation, peak (its largest predicted logit in a text, mean over the
    texts), background (catalogue logit_mean), contrast ((peak - background) / logit_std:
    comparable across concepts)."""
    from cocomix_lens.catalogue.contrast import mean_concept_logits

    mean = mean_concept_logits(model, texts, reduce="max").numpy()
    c = catalogue.concepts
    if len(mean) != len(c):
        raise ValueError(f"the catalogue has {len(c)} concepts, the model {len(mean)}; pass "
                         "the student of this catalogue's run")
    background = c["logit_mean"].to_numpy()
    df = pd.DataFrame({"name": c["name"], "explanation": c["explanation"], "peak": mean,
                       "background": background,
                       "contrast": (mean - background) / c["logit_std"].clip(lower=1e-6)},
                      index=c.index)
    df = df.sort_values("contrast", ascending=False, kind="stable")
    return df.head(limit) if limit else df
