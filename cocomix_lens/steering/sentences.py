"""Sentence positions of a steering edit: which concept slots start a sentence, read off the
tokens as they are generated.

Position t is the concept slot after token t, which predicts token t + 1; it is the k-th slot
of a sentence when k - 1 tokens passed since the last sentence end at or before t (k = 1: token
t itself ends a sentence, so the slot predicts the next sentence's first token). An edit at
`positions="sentences"` with `span=n` acts on the first n slots of every sentence;
`"new_sentences"` does the same from the prompt's last token on (the sentences the model
writes). A token ends a sentence by the one rule every corpus is split with
(`cocomix_lens.data.sentences.sentence_ends`): its text holds ., ?, ! or a newline, or it is
<|endoftext|> (a document's start).

    ends = sentence_end_table(model)                       # bool [d_vocab]
    since, carry = since_sentence_end(tokens, ends, carry)  # [batch, pos], [batch]
    mask = since < span                                     # the edited slots
"""

from __future__ import annotations

import torch
from torch import Tensor

SENTENCE_SETS = ("sentences", "new_sentences")
"""Position sets decided from the tokens: the first `span` slots of each sentence, everywhere
or from the prompt's last token on."""


def sentence_end_table(model) -> Tensor:
    """bool [d_vocab] on the model's device: which token ids end a sentence (module docstring).
    Needs the model's tokenizer (a model from `Run.open` or `from_pretrained` has it)."""
    from cocomix_lens.catalogue.readout import vocabulary
    from cocomix_lens.data.sentences import sentence_ends
    from cocomix_lens.data.tokenizer import eos_id

    tok = model.tokenizer
    if tok is None:
        raise ValueError("sentence positions read the tokens' text, but the model has no "
                         "tokenizer; fix: load it with Run.open(DIR) or from_pretrained(DIR), "
                         "or set model.tokenizer")
    ends = sentence_ends(vocabulary(tok, model.cfg.d_vocab), eos_id(tok))
    return torch.as_tensor(ends, device=model.device)


def since_sentence_end(tokens: Tensor, ends: Tensor,
                       carry: Tensor | None) -> tuple[Tensor, Tensor]:
    """tokens [batch, pos] (a chunk), `carry` [batch] (the count at the chunk's last token
    before this one; None: the chunk starts the sequence) -> (tokens since the last sentence
    end at or before each position [batch, pos]: 0 at an end, the carry for the next chunk).
    A sequence that does not start with an end counts from a virtual one before it."""
    n = tokens.shape[1]
    at = torch.arange(n, device=tokens.device)
    last = torch.where(ends[tokens], at, -1).cummax(-1).values  # [batch, pos]
    before = torch.zeros(tokens.shape[0], dtype=torch.long, device=tokens.device) \
        if carry is None else carry
    since = torch.where(last >= 0, at - last, before[:, None] + 1 + at)
    return since, since[:, -1]
