"""Concept labels: teacher + SAE attribution, teacher/SAE loading and the on-disk label cache.

    from cocomix_lens.concepts import ConceptExtractor, LabelCache, load_teacher
    teacher = load_teacher("gpt2")          # GPT-2 + the paper's 32k TopK SAE (network)
    ex = ConceptExtractor(teacher.model, teacher.sae)           # method="attribution"
    ids, scores = ex.labels(tokens, k=4)    # [batch, pos, 4] each
"""

from cocomix_lens.concepts.extractor import AttributionMap, ConceptExtractor, decoder_directions
from cocomix_lens.concepts.label_cache import LabelCache
from cocomix_lens.concepts.methods import METHODS, Readout, register
from cocomix_lens.concepts.teacher import (
    PAPER_SAES,
    FetchError,
    Teacher,
    load_sae,
    load_teacher,
    load_teacher_model,
    module_sha256,
    sae_sha256,
)

__all__ = [
    "AttributionMap", "ConceptExtractor", "FetchError", "LabelCache", "METHODS", "PAPER_SAES",
    "Readout", "Teacher", "decoder_directions", "load_sae", "load_teacher",
    "load_teacher_model", "module_sha256", "register", "sae_sha256",
]
