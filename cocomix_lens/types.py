"""The shape names used across cocomix-lens, and the one check that turns what a caller passes
as token ids into a `Tokens` batch.

Shapes are written in the names `batch pos d_model n_heads d_head d_mlp d_vocab n_concepts
d_sae` (comments and docstrings). `Tokens` and `Logits` are plain `Tensor` aliases: a jaxtyping
annotation nothing checks would only look like a guarantee, and checking every call would
replace the model's one-line errors on bad input with a type checker's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

Tokens = Tensor  # integer token ids [batch, pos]
Logits = Tensor  # float [batch, pos, d_vocab]

__all__ = ["Logits", "Tokens", "as_tokens"]

_INDEX_DTYPES = (torch.int64, torch.int32)  # what F.embedding takes as they are


def as_tokens(tokens: Any, n_ctx: int | None = None, offset: int = 0) -> Tokens:
    """Token ids as an integer tensor [batch, pos]: a [pos] tensor becomes one sequence, other
    integer dtypes become int64; with `n_ctx`, offset + pos must fit the context. Anything else
    (floats, bools, other ranks) is a one-line ValueError: tokenize text first."""
    if not isinstance(tokens, Tensor):
        tokens = torch.as_tensor(tokens)
    if tokens.ndim == 1:
        tokens = tokens[None]
    if tokens.dtype not in _INDEX_DTYPES:
        if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
            raise ValueError(f"tokens must be integer ids [batch, pos] or [pos], got dtype "
                             f"{tokens.dtype}; tokenize text first")
        tokens = tokens.long()
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be integer ids [batch, pos] or [pos], got shape "
                         f"{tuple(tokens.shape)}; tokenize text first")
    if n_ctx is not None and offset + tokens.shape[1] > n_ctx:
        raise ValueError(f"{offset + tokens.shape[1]} tokens exceed n_ctx={n_ctx}; truncate "
                         "the input")
    return tokens
