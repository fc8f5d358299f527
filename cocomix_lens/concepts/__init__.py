"""Concept labels: teacher + SAE attribution, teacher/SAE loading and the on-disk label cache.

    from cocomix_lens.concepts import ConceptExtractor, LabelCache, load_teacher
    teacher = load_teacher("gpt2")          # GPT-2 + the paper's 32k TopK SAE (network)
    ex = ConceptExtractor(teacher.model, teacher.sae)           # method="attribution"
    ids, scores = ex.labels(tokens, k=4)    # [batch, pos, 4] each
"""

from cocomix_lens.lazy import lazy_exports

EXPORTS = {
    "AttributionMap": "cocomix_lens.concepts.extractor",
    "ConceptExtractor": "cocomix_lens.concepts.extractor",
    "FetchError": "cocomix_lens.concepts.teacher",
    "LabelCache": "cocomix_lens.concepts.label_cache",
    "METHODS": "cocomix_lens.concepts.methods",
    "PAPER_SAES": "cocomix_lens.concepts.teacher",
    "Readout": "cocomix_lens.concepts.methods",
    "Teacher": "cocomix_lens.concepts.teacher",
    "decoder_directions": "cocomix_lens.concepts.extractor",
    "load_sae": "cocomix_lens.concepts.teacher",
    "load_teacher": "cocomix_lens.concepts.teacher",
    "load_teacher_model": "cocomix_lens.concepts.teacher",
    "module_sha256": "cocomix_lens.concepts.teacher",
    "register": "cocomix_lens.concepts.methods",
    "sae_sha256": "cocomix_lens.concepts.teacher",
}
__all__ = list(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
