"""TransformerLens activation patching on a CoCoMixModel, with positions meaning tokens.

From `insert_layer` on an interleaved model's stream holds two rows per token (h_t, c_t), so
TransformerLens's `patching` functions, which index activations by token position, would patch
the wrong rows. `PatchingView(model)` is what they take instead of the model: every hook they
place at or after `insert_layer` sees only the token rows (or, with rows="concepts", only the
concept rows), and `view.clean(cache)` gives the clean run's cache in the same rows:

    from transformer_lens import patching
    view = PatchingView(model)                       # rows="tokens"
    _, clean_cache = model.run_with_cache(clean_tokens)
    out = patching.get_act_patch_resid_pre(view, corrupted_tokens, view.clean(clean_cache),
                                           metric)   # [n_layers, pos]

With rows="concepts" the hooks below `insert_layer` patch nothing (the concept slot does not
exist there). Attention patterns keep every key row; only their query rows are mapped.
`patch_concept` patches the concept vector c_t itself (`concept.hook_vector`, or any
`concept.*` hook) one position at a time. Both run under torch.no_grad.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor

from cocomix_lens.model.lens import LAYER_RE, QUERY_AXIS, split_cache

ROWS = {"tokens": 0, "concepts": 1}  # first row of each token's pair in the doubled stream


class PatchingView:
    """A CoCoMixModel as TransformerLens's `patching` functions use it (`cfg`,
    `run_with_hooks`), its doubled rows mapped to token positions."""

    def __init__(self, model, rows: str = "tokens"):
        if rows not in ROWS:
            raise ValueError(f"rows={rows!r} is not one of {sorted(ROWS)}; fix: pass "
                             "rows='tokens' or rows='concepts'")
        if rows == "concepts" and not model.cfg.doubles_stream:
            raise ValueError("rows='concepts' needs an interleaved model (mix_mode "
                             f"'interleave' or 'pause'), not mix_mode {model.cfg.mix_mode!r}; "
                             "fix: use rows='tokens'")
        self.model, self.rows = model, rows
        cfg = model.cfg
        self.cfg = SimpleNamespace(n_layers=cfg.n_layers, n_heads=cfg.n_heads,
                                   n_key_value_heads=None, d_model=cfg.d_model,
                                   d_vocab=cfg.d_vocab, device=model.device)

    def clean(self, cache):
        """The clean run's cache in this view's rows (split_cache's view, or as it is)."""
        if not self.model.cfg.doubles_stream:
            return cache
        return split_cache(cache)[ROWS[self.rows]]

    def run_with_hooks(self, tokens: Tensor, fwd_hooks: Sequence[tuple[str, Callable]] = (),
                       **kwargs: Any) -> Any:
        """The model's run_with_hooks, each hook seeing this view's rows; no gradients."""
        hooks = [(name, self._mapped(name, fn)) for name, fn in fwd_hooks]
        with torch.no_grad():
            return self.model.run_with_hooks(tokens, fwd_hooks=hooks, **kwargs)

    def _mapped(self, name: str, fn: Callable) -> Callable:
        match = LAYER_RE.match(name) if isinstance(name, str) else None
        doubled = match is not None and self.model.stream_factor(int(match.group(1))) == 2
        if not doubled:
            # One row per token here: token positions already, and no concept slot yet.
            return fn if self.rows == "tokens" else (lambda act, hook: act)
        dim = 2 if name.endswith(QUERY_AXIS) else 1
        index = [slice(None)] * (dim + 1)
        index[dim] = slice(ROWS[self.rows], None, 2)
        index = tuple(index)

        def hook(act: Tensor, hook) -> Tensor:
            rows = act[index]
            out = fn(rows, hook=hook)
            if out is None:  # edited in place (through the strided view)
                return act
            act = act.clone()
            act[index] = out
            return act

        return hook


def patch_concept(model, corrupted_tokens: Tensor, clean_cache,
                  patching_metric: Callable[[Tensor], Tensor],
                  name: str = "concept.hook_vector") -> Tensor:
    """[pos]: the metric of the corrupted run with `name` (c_t, or another concept.* hook,
    one row per token) at each position replaced by the clean run's, one position at a time."""
    if not name.startswith("concept.") or name not in model.hook_dict:
        raise ValueError(f"patch_concept patches a concept.* hook of the model, not {name!r}; "
                         "fix: pass e.g. 'concept.hook_vector' or 'concept.hook_logits'")
    clean = clean_cache[name]
    out = torch.zeros(corrupted_tokens.shape[-1], device=model.device)
    for pos in range(corrupted_tokens.shape[-1]):
        def setter(act: Tensor, hook, pos: int = pos) -> Tensor:
            act = act.clone()
            act[:, pos] = clean[:, pos]
            return act

        with torch.no_grad():
            logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(name, setter)])
        out[pos] = patching_metric(logits)
    return out
