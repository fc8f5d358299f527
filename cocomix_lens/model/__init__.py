"""The hooked CoCoMix model: components, concept head, generation and checkpoints."""

from cocomix_lens.model.cocomix import CoCoMixModel, KVCache
from cocomix_lens.model.concept import MIXERS, ConceptHead

__all__ = ["CoCoMixModel", "KVCache", "ConceptHead", "MIXERS"]
