"""Where sentences end in token text: the one rule that splits a token stream into sentences.
It reads only the tokens' text, so it holds for any corpus: the world's ground truth
(`cocomix_lens.world.units`), the catalogue's text units and steering's sentence positions
(`cocomix_lens.steering.sentences`) all split here.

    ends = sentence_ends(vocabulary(tokenizer, vocab_size), eos_id(tokenizer))[token_ids]
    units = cocomix_lens.groundtruth.unit_ids(ends)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_END_CHARS = (".", "?", "!", "\n")


def sentence_ends(token_texts: Sequence[str], eos_id: int | None = None) -> np.ndarray:
    """bool [vocab]: which tokens end a sentence — their text holds ., ?, ! or a newline (a
    dialogue line or a topic switch), and the end-of-text token. Index it with token ids."""
    ends = np.array([any(c in t for c in _END_CHARS) for t in token_texts], dtype=bool)
    if eos_id is not None:
        ends[eos_id] = True
    return ends
