"""Text in, token ids out (and back) for a model that carries its tokenizer."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def to_tokens(model: Any, text: str) -> Tensor:
    """int64 [1, pos] token ids of `text` with the model's own tokenizer (no BOS added)."""
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        raise ValueError("the model has no tokenizer attached; load it from a directory with "
                         "tokenizer.json (CoCoMixModel.from_pretrained) or set model.tokenizer")
    ids = tok.encode(text).ids
    if not ids:
        raise ValueError(f"text {text!r} has no tokens; pass some text")
    return torch.tensor([ids], dtype=torch.long, device=model.W_E.device)


def str_tokens(model: Any, tokens: Tensor) -> list[str]:
    """The text of each token id of a [pos] or [1, pos] tensor."""
    ids = tokens.reshape(-1).tolist()
    return model.tokenizer.decode_batch([[i] for i in ids], skip_special_tokens=False)
