"""The concept catalogue as the pages use it: names, search, the table, one concept's record,
and the distribution of a concept's predicted logit.

Reads the run's catalogue (`cocomix_lens.catalogue.Catalogue`, Parquet in run.catalogue_dir);
a run without one gives empty names, so Steer and Inspect still work with bare concept ids.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app.resources import piece

TABLE_COLUMNS = {"name": "name", "explanation": "explanation", "detection": "detection AUROC",
                 "prediction_density": "prediction density",
                 "label_density": "label density", "act_density": "SAE density",
                 "fires_on": "fires on", "student_tokens": "top output tokens",
                 "meta_value": "topic", "meta_lift": "lift", "dead": "dead"}
SORTS = {"prediction density": ("prediction_density", False),
         "label density": ("label_density", False), "lift": ("meta_lift", False),
         "detection AUROC": ("detection", False), "concept id": (None, True),
         "name": ("name", True)}


def catalogue(run):
    """The run's catalogue (`run.catalogue`), loaded once per process. A missing, stale or
    unreadable catalogue is a one-line error naming the command that (re)builds it."""
    try:
        return piece(run, "catalogue")
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 — pyarrow, JSON, columns: all mean "rebuild it"
        if "fix:" in str(err):  # the library's own one-line errors (stale sources ...)
            raise
        first = str(err).splitlines()[0][:120] if str(err) else ""
        raise ValueError(f"the concept catalogue in {run.catalogue_dir} is unreadable "
                         f"({type(err).__name__}: {first}): rebuild it with "
                         f"'cocomix-lens catalog --run {run.path} --force'") from None


def concept_names(run) -> dict[int, str]:
    if not run.has("catalogue"):
        return {}
    names = catalogue(run).concepts["name"]
    return dict(zip(names.index.astype(int), names.astype(str)))


def search_ids(run, query: str, n_concepts: int) -> list[int]:
    """Concept ids matching `query` (an id, or words via the catalogue's search)."""
    query = (query or "").strip()
    if not query:
        return list(range(n_concepts))
    if query.isdigit():
        return [int(query)] if int(query) < n_concepts else []
    if not run.has("catalogue"):
        return []
    return [int(c) for c in catalogue(run).search(query, limit=None).index]


def _join(tokens, n: int = 6) -> str:
    if tokens is None or (isinstance(tokens, float) and np.isnan(tokens)):
        return ""
    return " · ".join(repr(str(t))[1:-1] for t in list(tokens)[:n])


def table(cat, query: str = "", sort: str = "prediction density") -> pd.DataFrame:
    """The catalogue as a display table indexed by concept id; with a `query`, the concepts
    matching it by meaning (catalogue search), best match first."""
    df = cat.concepts
    if query.strip():
        df = df.loc[cat.search(query, limit=None).index]
    else:
        col, ascending = SORTS[sort]
        df = df.sort_index() if col is None else df.sort_values(col, ascending=ascending,
                                                                kind="stable")
    out = df[[c for c in TABLE_COLUMNS if c in df.columns]].copy()
    for c in ("fires_on", "student_tokens"):
        if c in out:
            out[c] = out[c].map(_join)
    out.index.name = "concept"
    return out.rename(columns=TABLE_COLUMNS)


def record(run, concept: int):
    """The catalogue's record of `concept`; a ValueError naming the valid range otherwise."""
    cat = catalogue(run)
    try:
        return cat[concept]
    except ValueError:
        raise ValueError(f"concept {concept} is not in this run's catalogue (ids 0 to "
                         f"{len(cat) - 1}): pick a concept in the table") from None


def lift(rec) -> dict[str, float]:
    """metadata value -> lift for the record's concept ("key=value" when several keys)."""
    md = rec.metadata
    if md is None or not len(md):
        return {}
    many = md["key"].nunique() > 1
    return {(f"{k}={v}" if many else str(v)): float(x)
            for k, v, x in zip(md["key"], md["value"], md["lift"])}


N_SAMPLE_TOKENS = 8192  # validation tokens read once for the logit distributions


@st.cache_resource(show_spinner=False, max_entries=4)
def _val_logits(path: str, device: str) -> np.ndarray:
    """[tokens, n_concepts] student concept logits on the start of the validation split
    (windows of n_ctx, `cocomix_lens.catalogue.scan.concept_logits`)."""
    from app.resources import _lock, open_run
    from cocomix_lens.catalogue.scan import concept_logits as split_logits

    run = open_run(path, device)
    model = run.student  # the same object piece() returns: Run caches its pieces
    val = np.asarray(run.shards.split("val")[:N_SAMPLE_TOKENS])
    with _lock(path, device):
        return split_logits(model, val, window=int(model.cfg.n_ctx), tail=False)


def concept_logits(run, concept: int) -> np.ndarray:
    """The student's predicted logit of `concept` on a sample of validation tokens."""
    if not run.has("shards"):
        return np.zeros(0, np.float32)
    with st.spinner("Reading validation tokens for the logit distribution ..."):
        return _val_logits(str(run.path), run.device)[:, concept]


def card(run, concept: int):
    """The concept's feature card (`cocomix_lens.catalogue.card`), with the run's measured
    steering when it has some."""
    from cocomix_lens.catalogue.card import feature_card

    cat = catalogue(run)
    steering = run.steering if run.has("steering") else None
    return feature_card(record(run, concept), list(cat.concepts["name"]), steering)


def by_example(run, texts: list[str]) -> pd.DataFrame:
    """Concepts the student predicts more on `texts` than on validation text."""
    from app.resources import _lock
    from cocomix_lens.catalogue.search import by_example as search_by_example

    model = piece(run, "student")
    with _lock(str(run.path), run.device):
        return search_by_example(model, texts, catalogue(run), limit=20)


COVERAGE_SOURCES = {"sae": "SAE latents", "labels": "attribution labels",
                    "student": "CoCoMix student", "probe": "linear probe at the SAE hook"}


def coverage_table(run) -> pd.DataFrame | None:
    """Ground-truth coverage per concept source (rows) and variable (columns): "coverage
    (mean best F1)" from the run's groundtruth stage; None for corpora without known
    latents."""
    if not run.has("summary"):
        return None
    g = run.summary.get("groundtruth") or {}
    if not g.get("available"):
        return None
    rows = {}
    for src, label in COVERAGE_SOURCES.items():
        if src in g["coverage"]:
            f1 = g["mean_best_f1"][src]
            rows[label] = {v: f"{c:.2f} ({f1[v]:.2f})" if f1.get(v) is not None else "–"
                           for v, c in g["coverage"][src].items()}
    return pd.DataFrame(rows).T
