"""Tiny seeded teachers, SAEs and token shards shared by the concept-label tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from sae_lens import StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig
from sae_lens.saes.sae import SAEMetadata
from tokenizers import Tokenizer, models

from cocomix_lens.data import TokenShards, save_tokenizer, tokenizer_sha256
from cocomix_lens.model.hooks import HookedTransformer, HookedTransformerConfig

VOCAB = 40
D_MODEL = 16
HOOK = "blocks.1.hook_resid_post"


def tiny_hooked_transformer(seed: int = 0, dtype: torch.dtype = torch.float32,
                            n_layers: int = 3) -> HookedTransformer:
    cfg = HookedTransformerConfig(d_model=D_MODEL, n_layers=n_layers, n_heads=2, d_head=8,
                                  d_mlp=32, d_vocab=VOCAB, n_ctx=32, act_fn="gelu_new",
                                  normalization_type="LN", seed=seed, dtype=dtype)
    model = HookedTransformer(cfg).eval()
    with torch.no_grad():  # non-zero biases and LN params: every parameter matters
        g = torch.Generator().manual_seed(seed + 1)
        for name, p in model.named_parameters():
            if not name.split(".")[-1].startswith("W_"):
                p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def tiny_sae(kind: str = "topk", d_in: int = D_MODEL, d_sae: int = 48, k: int = 5,
             norm: str = "layer_norm", hook: str = HOOK, seed: int = 0,
             dtype: str = "float32"):
    torch.manual_seed(seed)
    meta = SAEMetadata(hook_name=hook)
    if kind == "topk":
        sae = TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=d_sae, k=k, normalize_activations=norm,
                                    metadata=meta, dtype=dtype))
    else:
        sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae, normalize_activations=norm,
                                            metadata=meta, dtype=dtype))
    with torch.no_grad():
        sae.b_enc.normal_(0.0, 0.1)
        sae.b_dec.normal_(0.0, 0.1)
    return sae.eval()


def tokens(batch: int = 2, pos: int = 10, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (batch, pos), generator=g)


def write_shards(root: Path, splits: dict[str, np.ndarray], vocab: int = VOCAB) -> TokenShards:
    """A shard directory in the documented format, written by hand (uint16 ids)."""
    root.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab - 1)}
                                     | {"<|endoftext|>": vocab - 1}, unk_token="t0"))
    save_tokenizer(tok, root / "tokenizer.json")
    info = {}
    for split, ids in splits.items():
        ids = np.asarray(ids, dtype=np.uint16)
        ids.tofile(root / f"{split}.bin")
        info[split] = {"file": f"{split}.bin", "docs_file": f"docs_{split}.jsonl",
                       "tokens": int(ids.size), "documents": 1,
                       "sha256": hashlib.sha256(ids.tobytes()).hexdigest()}
        (root / f"docs_{split}.jsonl").write_text(json.dumps(
            {"id": "d0", "start": 0, "end": int(ids.size), "meta": {}}) + "\n")
    manifest = {"format_version": 1, "vocab_size": vocab, "dtype": "uint16",
                "eos_id": vocab - 1, "tokenizer_sha256": tokenizer_sha256(tok),
                "splits": info}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return TokenShards.open(root)
