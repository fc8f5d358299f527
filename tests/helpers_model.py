"""Tiny seeded models shared by the model tests."""

import torch

from cocomix_lens import CoCoMixConfig, CoCoMixModel


def tiny_config(**overrides) -> CoCoMixConfig:
    base = dict(d_model=32, n_layers=3, n_heads=4, d_vocab=97, n_ctx=64, insert_layer=1,
                n_concepts=48, concept_top_k=5)
    return CoCoMixConfig(**{**base, **overrides})


def tiny_model(seed: int = 0, **overrides) -> CoCoMixModel:
    torch.manual_seed(seed)
    model = CoCoMixModel(tiny_config(**overrides)).eval()
    # Non-zero biases and LN params, so tests exercise every parameter.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.split(".")[-1].startswith("W_"):
                p.add_(0.05 * torch.randn_like(p))
    return model


def tokens(batch: int = 2, pos: int = 12, vocab: int = 97, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (batch, pos), generator=g)
