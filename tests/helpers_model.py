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


TEXTS = ["The cat sat on the mat. The dog ran after the cat.",
         "Paris is the capital of France. Berlin is the capital of Germany.",
         "One, two, three: counting numbers is fun. Ünïcödé bytes too."] * 20
_TOKENIZER = None


def tiny_tokenizer():
    """A 300-token byte-level BPE trained on TEXTS (built once per session)."""
    global _TOKENIZER
    if _TOKENIZER is None:
        from cocomix_lens.data.tokenizer import train_bpe
        _TOKENIZER = train_bpe(TEXTS, vocab_size=300)
    return _TOKENIZER


def tiny_text_model(seed: int = 0, **overrides) -> CoCoMixModel:
    """tiny_model with a 300-token vocabulary and the tiny tokenizer attached."""
    model = tiny_model(seed, **{"d_vocab": 300, **overrides})
    model.tokenizer = tiny_tokenizer()
    return model
