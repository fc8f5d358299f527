"""The concept catalogue as the pages use it: names, search, a table, one concept's record.

Reads `run.catalogue` (cocomix_lens.catalogue); a run without one gives empty names so Steer
and Inspect still work with bare concept ids.
"""

from __future__ import annotations

from app.resources import piece


def catalogue(run):
    """The run's catalogue, loaded once per process; MissingPieceError names the command."""
    return piece(run, "catalogue")


def concept_names(run) -> dict[int, str]:
    if not run.has("catalogue"):
        return {}
    table = catalogue(run).table
    return dict(zip(table["concept"].astype(int), table["name"].astype(str)))


def search_ids(run, query: str, n_concepts: int) -> list[int]:
    """Concept ids matching `query` (an id, or words via the catalogue's search)."""
    query = (query or "").strip()
    if not query:
        return list(range(n_concepts))
    if query.isdigit():
        return [int(query)] if int(query) < n_concepts else []
    if not run.has("catalogue"):
        return []
    return [int(c) for c in catalogue(run).search(query)]
