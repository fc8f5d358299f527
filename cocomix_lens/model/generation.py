"""Sampling and KV-cached generation for CoCoMixModel (a mixin; the model owns the cache).

Below insert_layer the cache holds one position per token, from it on two (token + concept
slot), so each decode step appends 1 and 2 positions respectively. Hooks on `concept.*`
run on every step, which is how steering applies during cached generation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from cocomix_lens.sampling import check_sampling
from cocomix_lens.types import as_tokens


def sample_next(logits: Tensor, temperature: float, top_k: int | None, top_p: float | None,
                generator: torch.Generator | None) -> Tensor:
    """logits [batch, d_vocab] -> token ids [batch]; temperature 0 is greedy."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        logits = logits.masked_fill(nucleus_drop(logits, top_p), float("-inf"))
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


NUCLEUS_K = 64
"""Tokens sorted first when looking for the top-p nucleus; the whole vocabulary is sorted only
when some row's NUCLEUS_K largest hold less than top_p (sorting every step's [batch, d_vocab]
was a fifth of steer-bench's generation time)."""


def nucleus_drop(logits: Tensor, top_p: float) -> Tensor:
    """bool [batch, d_vocab]: the tokens top-p sampling drops, i.e. each token once the mass
    of the tokens ranked before it already reaches top_p (at least one is kept)."""
    k = min(NUCLEUS_K, logits.shape[-1])
    vals, order = logits.topk(k, dim=-1)  # descending
    p = (vals - logits.logsumexp(-1, keepdim=True)).exp()
    before = p.cumsum(-1) - p
    if k < logits.shape[-1] and not bool((before[:, -1] + p[:, -1] >= top_p).all()):
        vals, order = logits.sort(-1, descending=True)
        p = vals.softmax(-1)
        before = p.cumsum(-1) - p
    drop = torch.ones_like(logits, dtype=torch.bool)
    return drop.scatter(-1, order, before >= top_p)


class GenerationMixin:
    """Token-id `stream` for CoCoMixModel (text, `generate` and steering: model/text.py)."""

    def stream(self, tokens: Tensor, max_new_tokens: int, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None,
               stop_tokens: Sequence[int] | None = None, seed: int | None = None,
               use_cache: bool = True) -> Iterator[Tensor]:
        """Yield the next token ids [batch] one step at a time.

        The hooks active when `stream` is called belong to the stream: if they are removed
        before it is exhausted (a `with model.hooks(...)` block ended), the next step raises
        instead of silently generating unsteered text."""
        check_sampling(max_new_tokens, temperature, top_k, top_p)
        prompt = as_tokens(tokens).to(self.device)
        total = prompt.shape[1] + max_new_tokens
        if total > self.cfg.n_ctx:
            raise ValueError(
                f"prompt ({prompt.shape[1]}) + max_new_tokens ({max_new_tokens}) exceeds "
                f"n_ctx={self.cfg.n_ctx}; shorten the prompt or generate fewer tokens"
            )
        return self._stream(prompt, max_new_tokens, temperature, top_k, top_p, stop_tokens,
                            seed, use_cache, _hook_handles(self))

    @torch.inference_mode()
    def _stream(self, prompt: Tensor, max_new_tokens: int, temperature: float,
                top_k: int | None, top_p: float | None, stop_tokens: Sequence[int] | None,
                seed: int | None, use_cache: bool, bound: list) -> Iterator[Tensor]:
        gen = None if seed is None else torch.Generator(self.device).manual_seed(seed)
        stops = None if not stop_tokens else torch.tensor(list(stop_tokens), device=self.device)
        finished = torch.zeros(prompt.shape[0], dtype=torch.bool, device=self.device)
        cache = self.new_kv_cache(prompt.shape[0], prompt.shape[1] + max_new_tokens) \
            if use_cache else None
        seq, step_in = prompt, prompt
        for step in range(max_new_tokens):
            _check_bound(self, bound)
            logits = self(step_in, past_kv_cache=cache)[:, -1]
            _check_finite(logits, step)
            nxt = sample_next(logits, temperature, top_k, top_p, gen)
            if stops is not None:
                nxt = torch.where(finished, stops[0], nxt)
                finished |= torch.isin(nxt, stops)
            yield nxt
            if stops is not None and bool(finished.all()):
                return
            if use_cache:
                step_in = nxt[:, None]
            else:
                seq = torch.cat([seq, nxt[:, None]], dim=1)
                step_in = seq


def _hook_handles(model) -> list:
    """Every TransformerLens hook handle registered on `model` now."""
    return [h for hp in model.hook_dict.values() for h in (*hp.fwd_hooks, *hp.bwd_hooks)]


def _check_bound(model, bound: list) -> None:
    """Refuse to go on once hooks the stream started with were removed."""
    if not bound:
        return
    live = {id(h) for h in _hook_handles(model)}
    if any(id(h) not in live for h in bound):
        raise RuntimeError("the hooks active when stream() was created were removed before it "
                           "finished (a `with model.hooks(...)` block ended); fix: iterate the "
                           "stream inside that block, or call generate() there")


def _check_finite(logits: Tensor, step: int) -> None:
    """logits [batch, d_vocab]: NaN or +inf (or a row of only -inf) has no next token; -inf
    alone is a legitimate ban of a token."""
    # The common case in two ops: the sum is finite only if every logit is (NaN and +-inf
    # propagate); 10x cheaper than isfinite().all() over a 50k vocabulary. An overflowing sum
    # of finite logits falls through to the exact check below.
    if bool(logits.sum().isfinite()):
        return
    bad = torch.isnan(logits).any(-1) | torch.isposinf(logits).any(-1) | torch.isneginf(
        logits).all(-1)
    if bool(bad.any()):
        raise ValueError(f"non-finite logits at generation step {step} (batch rows "
                         f"{bad.nonzero().flatten().tolist()}): NaN, +inf or all -inf; fix: "
                         "check the hooks or steering active during generation")
