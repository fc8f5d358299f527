"""Contrasting two groups of texts by the concepts a CoCoMix model predicts on them."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch import Tensor

from cocomix_lens.catalogue.scan import LOGITS
from cocomix_lens.concepts.capture import activations_at

# A `Catalogue` comes in typed Any: cocomix_lens.catalogue.store imports this module, and an import
# back, even for type checkers only, would close a circle (tests/test_import_rules.py).


def mean_concept_logits(model: Any, texts: list[str], reduce: str = "mean") -> Tensor:
    """[C] mean over `texts` of each text's concept logits reduced over its positions by
    `reduce` ("mean": a long text counts as much as a short one; "max": its peak)."""
    if isinstance(texts, str) or not texts:
        raise ValueError("pass a non-empty list of texts (not a single string)")
    if reduce not in ("mean", "max"):
        raise ValueError(f"reduce must be 'mean' or 'max', got {reduce!r}")
    per_text = [activations_at(model, [LOGITS], model.to_tokens(t))[LOGITS][0].float()
                for t in texts]
    per_text = [z.mean(0) if reduce == "mean" else z.max(0).values for z in per_text]
    return torch.stack(per_text).mean(0).cpu()


def contrast(model: Any, texts_a: list[str], texts_b: list[str],
             catalogue: Any | None = None) -> pd.DataFrame:
    """Every concept ranked by mean_a - mean_b of the model's predicted concept logits.

    Columns: mean_a, mean_b, diff, and with a catalogue also name and diff_std (diff in units
    of the concept's logit std on validation text, comparable across concepts). Indexed by
    concept id, largest diff first: head() favours group a, tail() group b.
    """
    if not getattr(model.cfg, "has_concepts", False):
        raise ValueError("contrast needs a CoCoMix model with a concept head (the student), "
                         f"got mix_mode {model.cfg.mix_mode!r}")
    a, b = mean_concept_logits(model, texts_a), mean_concept_logits(model, texts_b)
    df = pd.DataFrame({"mean_a": a.numpy(), "mean_b": b.numpy(), "diff": (a - b).numpy()})
    df.index.name = "concept"
    if catalogue is not None:
        if len(catalogue) != len(df):
            raise ValueError(f"the catalogue has {len(catalogue)} concepts, the model "
                             f"{len(df)}; pass the catalogue of this model's run")
        std = catalogue.concepts["logit_std"].to_numpy()
        df.insert(0, "name", catalogue.concepts["name"].to_numpy())
        df["diff_std"] = df["diff"] / std.clip(min=1e-6)
    return df.sort_values("diff", ascending=False, kind="stable")
