"""The catalogue of a run directory: built from its pieces, refused when they changed since.

    cat = build_for_run(Run.open("runs/demo"), progress=progress_bar)
    cat = open_for_run(run)          # what `run.catalogue` returns
"""

from __future__ import annotations

from typing import Any

from cocomix_lens.catalogue.build import CatalogueConfig, build_catalogue
from cocomix_lens.catalogue.store import Catalogue
from cocomix_lens.data.files import sha256_file
from cocomix_lens.progress import Progress

# Piece -> the file whose sha256 fingerprints it (weights, not configs: what changes results).
SOURCE_FILES = {"teacher": "model.safetensors", "sae": "sae_weights.safetensors",
                "student": "model.safetensors", "labels": "meta.json",
                "shards": "manifest.json"}


def run_sources(run: Any) -> dict[str, str]:
    """sha256 of each source file of the run's catalogue (missing pieces raise one line)."""
    return {piece: sha256_file(run.require(piece) / name) for piece, name in SOURCE_FILES.items()}


def build_for_run(run: Any, config: CatalogueConfig | None = None,
                  progress: Progress | None = None) -> Catalogue:
    """Build (or rebuild) the catalogue of `run` (a `cocomix_lens.Run`) in run.catalogue_dir."""
    from cocomix_lens.catalogue.explain import TRUTH_HEAD_F1
    from cocomix_lens.groundtruth import concept_matches

    sources = run_sources(run)  # first: a missing piece is reported before any loading
    return build_catalogue(run.catalogue_dir, teacher=run.teacher, sae=run.sae,
                           student=run.student, shards=run.shards, labels=run.labels,
                           config=config, sources=sources,
                           truth=concept_matches(run, threshold=TRUTH_HEAD_F1),
                           progress=progress)


def open_for_run(run: Any) -> Catalogue:
    """The run's catalogue, refusing one built from other weights, labels or shards."""
    return Catalogue.open(run.require("catalogue"), sources=run_sources(run))
