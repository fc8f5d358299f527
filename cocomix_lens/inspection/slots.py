"""What each concept slot c_t does to the next-token prediction at its own position t.

For every position t of one sequence (those with a next token x_{t+1}):
    logprob[t]         log p(x_{t+1}) of the clean forward
    delta_zero[t]      change of it when c_t is zeroed at concept.hook_vector
    delta_mean[t]      ... when c_t is replaced by a mean concept vector
    attribution[t, c]  acts[t, c] * d logit_t[x_{t+1}] / d acts[t, c] at concept.hook_acts
                       (non-zero only for the top-k active concepts)
    concept_delta[t,c] change of logprob[t] when acts[t, c] alone is zeroed (exact), for the
                       concepts asked for
Each quantity is about position t only: the edit at t also moves later predictions, which
is not counted. Doing that exactly needs one forward per (t, edit); instead every (t, edit)
is a "probe": an extra copy of token t appended after the clean sequence, fed through the
model with the clean keys/values of positions < t in the KV cache and an attention mask that
hides every other probe and every clean position >= t. A probe therefore computes exactly
what position t computes in a full forward with that one edit (causal attention: nothing
before t depends on t), while all probes share one batched forward over the cached prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cocomix_lens.concepts.capture import parameters_require_grad

# Edits of the concept vector c_t per probe.
KEEP, ZERO, MEAN = 0, 1, 2


@dataclass(frozen=True)
class SlotEffects:
    """Per position t < T-1 of one sequence of T tokens; see the module docstring."""

    logprob: Tensor  # [T-1]
    delta_zero: Tensor  # [T-1]
    delta_mean: Tensor  # [T-1]
    acts: Tensor  # [T-1, C] the student's top-k concept acts (zeros elsewhere)
    attribution: Tensor  # [T-1, C]
    concept_delta: Tensor  # [T-1, m] exact delta for `concepts` [T-1, m] (m may be 0)


@dataclass(frozen=True)
class _Probes:
    pos: Tensor  # [R] position each probe recomputes
    vector: Tensor  # [R] KEEP / ZERO / MEAN
    drop: Tensor  # [R] concept whose act is zeroed, -1 for none


def slot_effects(model: nn.Module, tokens: Tensor, mean_vector: Tensor | None = None,
                 concepts: Tensor | None = None, chunk: int | None = None) -> SlotEffects:
    """Slot effects for one sequence `tokens` [1, T] (T >= 2) of a CoCoMix `model`.

    mean_vector [d_model]: what MEAN replaces c_t with (default: the mean of this sequence's
    own c_t). concepts [T-1, m]: concept ids whose exact single-concept ablation is wanted.
    chunk: probes per forward (default 128); each attends over T + chunk slots.
    """
    if not getattr(model.cfg, "has_concepts", False):
        raise ValueError("slot effects need a CoCoMix model with a concept head, got mix_mode "
                         f"{model.cfg.mix_mode!r}")
    tokens = tokens.reshape(1, -1).to(model.W_E.device)
    n = tokens.shape[1] - 1
    if n < 1:
        raise ValueError("slot effects need at least 2 tokens (a position and its next token)")
    cache, vectors = _prefill(model, tokens)
    mean = vectors.mean(0) if mean_vector is None else torch.as_tensor(mean_vector)
    concepts = torch.zeros(n, 0, dtype=torch.long) if concepts is None else concepts.long()
    probes = _probe_table(n, concepts.cpu())
    targets = tokens[0, 1:][probes.pos]
    chunk = min(chunk or 128, model.cfg.n_ctx)  # probes per forward: bounds the R x R waste
    lp, acts, grads = [], [], []
    for lo in range(0, len(probes.pos), chunk):
        part = _Probes(*(f[lo:lo + chunk] for f in (probes.pos, probes.vector, probes.drop)))
        out = _run_probes(model, tokens, cache, part, mean.to(vectors), targets[lo:lo + chunk])
        lp.append(out[0])
        acts.append(out[1])
        grads.append(out[2])
    lp_all, acts_all, grad_all = torch.cat(lp), torch.cat(acts), torch.cat(grads)
    clean = lp_all[:n]
    blocks = lp_all[n:].view(-1, n)  # ZERO, MEAN, then one block per concept rank
    return SlotEffects(logprob=clean, delta_zero=blocks[0] - clean, delta_mean=blocks[1] - clean,
                       acts=acts_all[:n], attribution=acts_all[:n] * grad_all[:n],
                       concept_delta=(blocks[2:] - clean).T.contiguous())


def _probe_table(n: int, concepts: Tensor) -> _Probes:
    """Probes in blocks of n (one per position): KEEP, ZERO, MEAN, then each concept rank."""
    pos = torch.arange(n)
    m = concepts.shape[1]
    vector = torch.tensor([KEEP, ZERO, MEAN] + [KEEP] * m).repeat_interleave(n)
    drop = torch.cat([torch.full((3 * n,), -1, dtype=torch.long), concepts.T.reshape(-1)])
    return _Probes(pos.repeat(3 + m), vector, drop)


@torch.no_grad()
def _prefill(model: nn.Module, tokens: Tensor):
    """The clean forward into a KV cache sized for probes; also every c_t [T, d_model]."""
    store = {}
    cache = model.new_kv_cache(1, tokens.shape[1] + model.cfg.n_ctx)
    with model.hooks(fwd_hooks=[("concept.hook_vector",
                                 lambda c, hook: store.update(c=c[0].detach()))]):
        model(tokens, past_kv_cache=cache)
    return cache, store["c"]


def _run_probes(model: nn.Module, tokens: Tensor, cache, probes: _Probes, mean: Tensor,
                targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(log p(target) [R], acts [R, C], d logit(target) / d acts [R, C]) of the probes."""
    n_tok = tokens.shape[1]
    prefix = [layer.pos for layer in cache.layers]
    dev = tokens.device
    pos, vec, drop = (f.to(dev) for f in (probes.pos, probes.vector, probes.drop))
    store: dict[str, Tensor] = {}

    def pos_embed(x: Tensor, hook) -> Tensor:
        return model.W_pos[pos].unsqueeze(0).to(x.dtype)

    def acts_leaf(a: Tensor, hook) -> Tensor:
        a = a.detach().clone()
        rows = (drop >= 0).nonzero().squeeze(-1)
        a[0, rows, drop[rows]] = 0.0
        store["acts"] = a.requires_grad_(True)
        return store["acts"]

    def edit_vector(c: Tensor, hook) -> Tensor:
        c = torch.where((vec == ZERO)[None, :, None], torch.zeros_like(c), c)
        return torch.where((vec == MEAN)[None, :, None], mean.expand_as(c), c)

    hidden = {f: ~_probe_mask(pos, n_tok, f) for f in {model.stream_factor(i)
                                                       for i in range(model.cfg.n_layers)}}
    hooks = [("hook_pos_embed", pos_embed), ("concept.hook_acts", acts_leaf),
             ("concept.hook_vector", edit_vector)]
    for i in range(model.cfg.n_layers):
        hooks.append((f"blocks.{i}.attn.hook_attn_scores",
                      lambda s, hook, h=hidden[model.stream_factor(i)]: s.masked_fill(
                          h, float("-inf"))))
    cache.n_tokens = 0  # positions come from pos_embed; this keeps the n_ctx check per chunk
    want_grad = bool(((vec == KEEP) & (drop < 0)).any())  # only clean probes are attributed
    try:
        with parameters_require_grad(model, False), torch.set_grad_enabled(want_grad), \
                model.hooks(fwd_hooks=hooks):
            logits = model(tokens[0, pos].unsqueeze(0), past_kv_cache=cache)[0]  # [R, V]
            picked = logits.gather(-1, targets[:, None]).squeeze(-1)
            grad = (torch.autograd.grad(picked.sum(), store["acts"])[0] if want_grad
                    else torch.zeros_like(store["acts"]))
    finally:
        for layer, p in zip(cache.layers, prefix):
            layer.pos = p  # the next chunk reuses the clean prefix
    lp = picked.detach() - logits.detach().logsumexp(-1)
    return lp.float(), store["acts"].detach()[0].float(), grad[0].float()


def _probe_mask(pos: Tensor, n_tok: int, f: int) -> Tensor:
    """Bool [R*f, n_tok*f + R*f]: what each probe slot may attend to in a block whose stream
    has f slots per token: clean slots of tokens < its position, its own earlier slots."""
    r = len(pos)
    q_probe = torch.arange(r * f, device=pos.device) // f
    q_slot = torch.arange(r * f, device=pos.device) % f
    clean = torch.arange(n_tok * f, device=pos.device)[None, :] < (pos[q_probe] * f)[:, None]
    k = torch.arange(r * f, device=pos.device)
    own = (k[None, :] // f == q_probe[:, None]) & (k[None, :] % f <= q_slot[:, None])
    return torch.cat([clean, own], dim=1)
