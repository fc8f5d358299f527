"""The concept catalogue: what every concept of a CoCoMix run means, stored beside the run.

    from cocomix_lens.catalogue import Catalogue, build_catalogue
    cat = build_catalogue("runs/demo/catalogue", teacher=..., sae=..., student=...,
                          shards=..., labels=...)     # or: cocomix-lens catalog --run DIR
    cat = Catalogue.open("runs/demo/catalogue")  # or Run.open("runs/demo").catalogue
    cat[12]                                  # ConceptRecord; print(cat[12]) for a card
    cat.concepts                             # one row per concept (pandas), see COLUMNS
    cat.search("river")                      # by name, promoted tokens, contexts
    cat.contrast(student, texts_a, texts_b)  # concepts ranked by predicted-logit difference
"""

from cocomix_lens.catalogue.build import CatalogueConfig, build_catalogue, default_sources
from cocomix_lens.catalogue.contrast import contrast, mean_concept_logits
from cocomix_lens.catalogue.render import concept_card, concepts_table
from cocomix_lens.catalogue.run import build_for_run, open_for_run, run_sources
from cocomix_lens.catalogue.store import COLUMNS, Catalogue, ConceptRecord

__all__ = ["COLUMNS", "Catalogue", "CatalogueConfig", "ConceptRecord", "build_catalogue",
           "build_for_run", "concept_card", "concepts_table", "contrast", "default_sources",
           "mean_concept_logits", "open_for_run", "run_sources"]
