"""Sentences as units of the world's ground truth.

The generator writes topic, act, tense and sentiment over a whole sentence's span (and kind
over the document), so those variables are judged per sentence: does a concept fire anywhere
in a sentence exactly when the sentence holds the value (`cocomix_lens.groundtruth.pool_units`).
Characters, places and quantities are spans of a few tokens and are judged per token.

    ends = sentence_ends([tokenizer.decode([i]) for i in range(vocab_size)])[token_ids]
    units = cocomix_lens.groundtruth.unit_ids(ends)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SENTENCE_VARIABLES = ("topic", "act", "tense", "sentiment", "kind")
"""Variables constant over a sentence, scored per sentence."""

_END_CHARS = (".", "?", "!", "\n")


def sentence_ends(token_texts: Sequence[str], eos_id: int | None = None) -> np.ndarray:
    """bool [vocab]: which tokens end a sentence — their text holds ., ?, ! or a newline (a
    dialogue line or a topic switch), and the end-of-text token. Index it with token ids."""
    ends = np.array([any(c in t for c in _END_CHARS) for t in token_texts], dtype=bool)
    if eos_id is not None:
        ends[eos_id] = True
    return ends
