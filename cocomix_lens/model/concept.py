"""The heads that mix a vector into the stream at insert_layer, and every mix mode's code.

A mix mode is one `HEADS` entry here (the head class and its `Mixer`: how the head's vector
joins the stream and which positions of the final stream feed the LM head) plus its
`cocomix_lens.config.MIX_MODES` entry (what it means for the architecture). The model only
calls `head.mix(h)` at insert_layer and `head.readout(x)` before the LM head.

Concept head, exactly as the official code computes it (see docs/cocomix_facts.md):
    mu, std = mean(h), unbiased std(h) over d;  x = (h - mu) / (std + 1e-5) - pre_bias
    z = x @ W_pred + b_pred                         concept logits  [batch, pos, n_concepts]
    a = raw top-k of z, zeros elsewhere             concept acts    [batch, pos, n_concepts]
    c = (a @ W_comp + b_comp + pre_bias) * std + mu concept vector  [batch, pos, d_model]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cocomix_lens.config import CoCoMixConfig
from cocomix_lens.model.hooks import HookPoint, Module, watched

STD_EPS = 1e-5  # added to the std, not the variance, as the official code does


@dataclass(frozen=True)
class Mixer:
    """How a head's vector joins the residual stream at insert_layer."""

    mix: Callable[[Tensor, Tensor], Tensor]  # (h [b,t,d], c [b,t,d]) -> mixed stream
    readout: Callable[[Tensor], Tensor]  # final stream -> positions that feed the LM head


class MixingHead(Module):
    """A head whose forward(h) gives (vector [batch, pos, d_model], concept logits or None),
    mixed into the stream by its `Mixer`."""

    def __init__(self, mixer: Mixer):
        super().__init__()
        self.mixer = mixer
        # A plain function attribute: the model calls it once per forward, no extra frame.
        self.readout = mixer.readout  # final stream -> positions that feed the LM head
        self.hook_mixed = HookPoint()  # [batch, 2 * pos or pos, d_model] mixed stream

    def mix(self, h: Tensor) -> tuple[Tensor, Tensor | None]:
        """h [batch, pos, d_model] -> (mixed stream, concept logits [batch, pos, C] or None)."""
        c, logits = self(h)
        return self.hook_mixed(self.mixer.mix(h, c)), logits


class ConceptHead(MixingHead):
    """Predicts concept logits from the residual stream and compresses the top-k into c_t."""

    def __init__(self, cfg: CoCoMixConfig, mixer: Mixer):
        super().__init__(mixer)
        d, c = cfg.d_model, cfg.n_concepts
        self.top_k = cfg.concept_top_k
        self.pre_bias = nn.Parameter(torch.zeros(d))
        self.W_pred = nn.Parameter(torch.empty(d, c))
        self.b_pred = nn.Parameter(torch.zeros(c))
        # [n_concepts, d_model]: row i is concept i's direction, so the sparse product can be
        # computed as a weighted gather of k rows (F.embedding_bag) instead of a C-wide matmul.
        self.W_comp = nn.Parameter(torch.empty(c, d))
        self.b_comp = nn.Parameter(torch.zeros(d))
        self.use_gather = True
        self.hook_in = HookPoint()  # [batch, pos, d_model] residual read by the predictor
        self.hook_logits = HookPoint()  # [batch, pos, n_concepts] all concept logits
        self.hook_acts = HookPoint()  # [batch, pos, n_concepts] top-k kept, zeros elsewhere
        self.hook_vector = HookPoint()  # [batch, pos, d_model] continuous concept c_t

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """h [batch, pos, d_model] -> (c [batch, pos, d_model], logits [batch, pos, n_concepts])."""
        h = self.hook_in(h)
        std, mu = torch.std_mean(h, dim=-1, keepdim=True)  # unbiased std, as torch.std
        x = (h - mu) / (std + STD_EPS) - self.pre_bias
        logits = self.hook_logits(F.linear(x, self.W_pred.T, self.b_pred))  # as MLP.forward
        logits, vals, idx = top_k(logits, self.top_k)
        c = self._compress(logits, vals, idx)
        c = (c + self.pre_bias) * std + mu
        return self.hook_vector(c), logits

    def _compress(self, logits: Tensor, vals: Tensor, idx: Tensor) -> Tensor:
        if self.use_gather and not watched(self.hook_acts):
            return weighted_rows(self.W_comp, vals, idx) + self.b_comp
        # Dense path: someone reads or edits the sparse acts, so materialise them.
        acts = torch.zeros_like(logits).scatter(-1, idx, vals)
        acts = self.hook_acts(acts)
        return acts @ self.W_comp + self.b_comp


def top_k(logits: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """(logits, values, indices) of the k largest logits [..., C] (`torch.topk`); under
    autograd, the logits come back from the same node as the values (see `_TopK`)."""
    if not (logits.requires_grad and torch.is_grad_enabled()):
        return (logits, *logits.topk(k, dim=-1))
    return _TopK.apply(logits, k)


class _TopK(torch.autograd.Function):
    """topk whose backward adds the values' gradient to the logits' other gradient in one
    pass. Plain `topk` makes autograd build a dense zero tensor, scatter the k gradients into
    a copy of it and add that to the gradient of the logits' other uses (the concept loss):
    three C-wide passes per position. Returning the logits from this node hands both
    gradients to one backward. Same numbers: the k values are added last, as autograd did."""

    @staticmethod
    def forward(ctx, logits: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
        vals, idx = logits.topk(k, dim=-1)
        ctx.save_for_backward(idx)
        ctx.mark_non_differentiable(idx)
        ctx.shape = logits.shape
        # detach: an alias that autograd treats as a new output, not as a view of the input
        # (a view returned beside other outputs could not be edited in place by hooks).
        return logits.detach(), vals, idx

    @staticmethod
    def backward(ctx, g_logits: Tensor | None, g_vals: Tensor | None, _) -> tuple:
        (idx,) = ctx.saved_tensors
        if g_vals is None:
            return g_logits, None
        if g_logits is None:  # TopkBackward's own formula
            return g_vals.new_zeros(ctx.shape).scatter_(-1, idx, g_vals), None
        return g_logits.scatter_add(-1, idx, g_vals), None


def top_k_mask(logits: Tensor, k: int) -> Tensor:
    """[..., C] True at the k concepts the head keeps: `torch.topk`'s choice, exactly as the
    forward selects them (ties broken the same way). The one top-k rule for readers."""
    idx = logits.topk(min(k, logits.shape[-1]), dim=-1).indices
    return torch.zeros_like(logits, dtype=torch.bool).scatter(-1, idx, True)


# Up to this many gathered elements (positions x k x d_model, 4 MB of floats) the rows are
# gathered and reduced with one bmm: on a decode step that is two ops, where embedding_bag
# also builds an offsets tensor. Beyond it embedding_bag avoids materialising the gather.
BMM_GATHER_MAX = 1 << 20


def weighted_rows(W: Tensor, vals: Tensor, idx: Tensor) -> Tensor:
    """sum_j vals[..., j] * W[idx[..., j]]: vals, idx [..., k], W [C, d] -> [..., d]."""
    k, d = vals.shape[-1], W.shape[1]
    if idx.numel() * d <= BMM_GATHER_MAX:
        rows = W.index_select(0, idx.reshape(-1)).view(-1, k, d)
        return torch.bmm(vals.reshape(-1, 1, k), rows).view(*vals.shape[:-1], d)
    c = F.embedding_bag(idx.reshape(-1, k), W, per_sample_weights=vals.reshape(-1, k), mode="sum")
    return c.view(*vals.shape[:-1], d)


class PauseHead(MixingHead):
    """Pause-token baseline: a learned vector where the concept vector would go; no logits."""

    def __init__(self, cfg: CoCoMixConfig, mixer: Mixer):
        super().__init__(mixer)
        self.pause_vector = nn.Parameter(torch.zeros(cfg.d_model))
        self.hook_vector = HookPoint()  # [batch, pos, d_model] the pause vector per slot

    def forward(self, h: Tensor) -> tuple[Tensor, None]:
        return self.hook_vector(self.pause_vector.expand_as(h)), None


# ---- mix modes ------------------------------------------------------------------------------
def _interleave(h: Tensor, c: Tensor) -> Tensor:
    # (h1, c1, h2, c2, ...): c_t sees h_<=t and c_<t under the plain causal mask.
    b, t, d = h.shape
    return torch.stack((h, c.expand_as(h)), dim=2).view(b, 2 * t, d)


def _concept_slots(x: Tensor) -> Tensor:
    return x[:, 1::2]  # slot t (the slot after token t) predicts token t + 1


def _add(h: Tensor, c: Tensor) -> Tensor:
    return h + c


def _all_positions(x: Tensor) -> Tensor:
    return x


INTERLEAVE = Mixer(_interleave, _concept_slots)
ADD = Mixer(_add, _all_positions)

HEADS: dict[str, tuple[type[MixingHead], Mixer]] = {
    "interleave": (ConceptHead, INTERLEAVE),
    "add": (ConceptHead, ADD),
    "pause": (PauseHead, INTERLEAVE),
}
"""mix_mode -> (head class, mixer); mix_mode "none" has no head."""

MIXERS: dict[str, Mixer] = {mode: mixer for mode, (_, mixer) in HEADS.items()}


def build_head(cfg: CoCoMixConfig) -> MixingHead | None:
    """The head of cfg.mix_mode (None for plain GPT-2)."""
    if cfg.mix_mode not in HEADS:
        return None
    head, mixer = HEADS[cfg.mix_mode]
    return head(cfg, mixer)
