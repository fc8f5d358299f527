"""Sentences as units of the world's ground truth.

The generator writes topic, act, tense and sentiment over a whole sentence's span (and kind
over the document), so those variables are judged per sentence: does a concept fire anywhere
in a sentence exactly when the sentence holds the value (`cocomix_lens.groundtruth.pool_units`).
Characters, places and quantities are spans of a few tokens and are judged per token.

    ends = sentence_ends([tokenizer.decode([i]) for i in range(vocab_size)])[token_ids]
    units = cocomix_lens.groundtruth.unit_ids(ends)
"""

from __future__ import annotations

# The sentence-end rule reads only token text, so it lives with the data (one rule for every
# corpus); the world's sentence units are made with it, and `world.sentence_ends` names it.
from cocomix_lens.data.sentences import sentence_ends

SENTENCE_VARIABLES = ("topic", "act", "tense", "sentiment", "kind")
"""Variables constant over a sentence, scored per sentence."""

__all__ = ["SENTENCE_VARIABLES", "sentence_ends"]
