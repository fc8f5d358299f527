"""What a concept writes, read through an unembedding, and the short name made from it.

Direct-path readout (the "logit lens" of a direction): a direction v in the residual stream
is centred and scaled like ln_final would (mean removed, times ln_final.w; the per-position
1/std is a positive factor and does not change the ranking), then multiplied by W_U:
    teacher: v = the SAE decoder row of latent c (at the SAE hook)      -> teacher W_U
    student: v = the compressor row W_comp[c] (what c adds to c_t)      -> student W_U
It ignores the blocks above the hook, so it says what the concept promotes directly, not
everything it causes.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn


@torch.no_grad()
def direct_logits(directions: Tensor, model: nn.Module) -> Tensor:
    """[C, d_model] residual directions -> [C, d_vocab] direct-path token logits."""
    v = directions.float()
    v = v - v.mean(-1, keepdim=True)
    ln_w = getattr(getattr(model, "ln_final", None), "w", None)
    if ln_w is not None:  # TransformerLens models with folded layer norms have none
        v = v * ln_w.detach().float().to(v.device)
    return v @ model.W_U.detach().float().to(v.device)


def top_tokens(logits: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """(ids [C, n], values [C, n]) of the n largest entries of each row of [C, d_vocab]."""
    top = logits.topk(min(n, logits.shape[-1]), dim=-1)
    return top.indices, top.values


def vocabulary(tokenizer, size: int) -> list[str]:
    """The text of every token id below `size` (special tokens kept, e.g. <|endoftext|>)."""
    return tokenizer.decode_batch([[i] for i in range(size)], skip_special_tokens=False)


_WORDLIKE = re.compile(r"\w")


def short_name(*token_lists: list[str], n_words: int = 3) -> str:
    """A name of up to `n_words` distinct tokens, taken in turn from each list (best first):
    stripped, case-folded duplicates and tokens without a letter or digit skipped."""
    seen: set[str] = set()
    words: list[str] = []
    for depth in range(max((len(t) for t in token_lists), default=0)):
        for tokens in token_lists:
            if depth >= len(tokens) or len(words) >= n_words:
                continue
            word = tokens[depth].strip()
            if word and _WORDLIKE.search(word) and word.casefold() not in seen:
                seen.add(word.casefold())
                words.append(word)
    return "/".join(words) if words else "(unnamed)"


def logit_histogram(logits: Tensor, n_bins: int) -> tuple[Tensor, Tensor]:
    """(counts int64 [C, n_bins], range [C, 2] = (min, max)) of each row of [C, d_vocab]:
    how a concept's direct-path effect spreads over the vocabulary (Neuronpedia's logit
    density); bins split each row's own range evenly."""
    lo, hi = logits.min(-1).values, logits.max(-1).values
    width = (hi - lo).clamp(min=1e-12)
    idx = ((logits - lo[:, None]) / width[:, None] * n_bins).long().clamp(0, n_bins - 1)
    counts = torch.zeros(len(logits), n_bins, dtype=torch.long)
    counts.scatter_add_(1, idx, torch.ones_like(idx))
    return counts, torch.stack([lo, hi], 1)


@torch.no_grad()
def cosine_neighbours(rows: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """(ids [C, n], cosines [C, n]) of each row's most similar other rows of [C, d]."""
    unit = rows.float() / rows.float().norm(dim=-1, keepdim=True).clamp(min=1e-12)
    cos = unit @ unit.T
    cos.fill_diagonal_(float("-inf"))
    top = cos.topk(min(n, len(rows) - 1), dim=-1)
    return top.indices, top.values
