"""The one jaxtyping vocabulary used for shapes across cocomix-lens."""

from __future__ import annotations

from jaxtyping import Float, Int
from torch import Tensor

Tokens = Int[Tensor, "batch pos"]
Residual = Float[Tensor, "batch pos d_model"]
Logits = Float[Tensor, "batch pos d_vocab"]
ConceptLogits = Float[Tensor, "batch pos n_concepts"]
HeadActs = Float[Tensor, "batch pos n_heads d_head"]
Pattern = Float[Tensor, "batch n_heads query_pos key_pos"]
SaeActs = Float[Tensor, "batch pos d_sae"]

__all__ = ["Tokens", "Residual", "Logits", "ConceptLogits", "HeadActs", "Pattern", "SaeActs"]
