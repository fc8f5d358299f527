"""Attribution methods: how an SAE readout of the teacher becomes per-latent concept scores.

A method is a scoring function over a `Readout` (the SAE latents at each position and, when the
method asks for it, the loss gradient at the SAE hook) plus flags saying what it needs, so
the extractor skips the backward pass for `activation` and the pre-activations for the rest.

Scores follow the official CoCoMix code: a_t[c] = act_t[c] * <g_t, d_c> with g_t = dL/dx_t the
gradient at the hooked activation and d_c the decoder row of latent c. As there, d_c lives in
the SAE's (possibly layer-normalised) input space; the exact chain rule through the
normalisation would multiply every score at a position by the same positive std, so the
per-position ranking, i.e. the labels, is the same either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported on use: the CLI lists METHODS without it
    from torch import Tensor

# Rows per chunk for the sparse decoder dot: bounds the gathered [rows, active, d_in] block.
_CHUNK_ROWS = 1024


@dataclass(frozen=True)
class Readout:
    """What the teacher + SAE say about a batch; fields a method did not ask for are None."""

    acts: Tensor  # [batch, pos, d_sae] latent activations (post-TopK / post-ReLU)
    decoder: Tensor  # [d_sae, d_in] decoder direction of each latent
    pre: Tensor | None = None  # [batch, pos, d_sae] pre-activations, fed to TopK/ReLU
    grad: Tensor | None = None  # [batch, pos, d_in] dL/dx at the SAE hook


@dataclass(frozen=True)
class Method:
    """A registered attribution method."""

    score: Callable[[Readout], Tensor]  # Readout -> [batch, pos, d_sae]
    needs_grad: bool
    needs_pre: bool
    doc: str


METHODS: dict[str, Method] = {}


def register(name: str, *, needs_grad: bool, needs_pre: bool = False):
    """Decorator: make `fn(readout) -> scores` available as attribution method `name`."""

    def deco(fn: Callable[[Readout], Tensor]) -> Callable[[Readout], Tensor]:
        doc = (fn.__doc__ or "").strip().splitlines()[0]
        METHODS[name] = Method(fn, needs_grad=needs_grad, needs_pre=needs_pre, doc=doc)
        return fn

    return deco


def get_method(name: str) -> Method:
    """The method registered as `name`; ValueError listing the known names otherwise."""
    if name not in METHODS:
        raise ValueError(
            f"unknown attribution method {name!r}; choose one of {sorted(METHODS)}"
        )
    return METHODS[name]


def decoder_dot(grad: Tensor, decoder: Tensor) -> Tensor:
    """<g_t, d_c> for every position and latent: [batch, pos, d_in] -> [batch, pos, d_sae]."""
    return grad @ decoder.T


def decoder_dot_on_support(grad: Tensor, decoder: Tensor, acts: Tensor) -> Tensor:
    """<g_t, d_c> where acts != 0, exact zeros elsewhere: [batch, pos, d_sae].

    A TopK SAE has K of d_sae latents active per position (32 of 32,768 for the paper's), so
    gathering the active decoder rows costs K*d_in per position instead of the dense
    d_sae*d_in matmul, which would be as expensive as the SAE encoder itself.
    """
    d_sae = acts.shape[-1]
    flat_acts = acts.reshape(-1, d_sae)
    flat_grad = grad.reshape(-1, grad.shape[-1]).to(decoder.dtype)
    n_active = int((flat_acts != 0).sum(-1).max()) if flat_acts.numel() else 0
    if 4 * n_active > d_sae:  # not sparse: the dense matmul is cheaper
        return decoder_dot(grad.to(decoder.dtype), decoder)
    out = flat_acts.new_zeros(flat_acts.shape)
    if n_active == 0:
        return out.view_as(acts)
    for lo in range(0, flat_acts.shape[0], _CHUNK_ROWS):
        rows = slice(lo, lo + _CHUNK_ROWS)
        # abs().topk covers every non-zero latent of each row (plus zeros where a row has fewer)
        idx = flat_acts[rows].abs().topk(n_active, dim=-1).indices  # [rows, n_active]
        dots = decoder[idx].bmm(flat_grad[rows].unsqueeze(-1)).squeeze(-1)
        out[rows].scatter_(-1, idx, dots)
    return out.view_as(acts)


@register("attribution", needs_grad=True)
def attribution(r: Readout) -> Tensor:
    """Official CoCoMix code: post-TopK activation x <dL/dx, decoder direction>."""
    return r.acts * decoder_dot_on_support(r.grad, r.decoder, r.acts)


@register("attribution_preact", needs_grad=True, needs_pre=True)
def attribution_preact(r: Readout) -> Tensor:
    """The paper's text: pre-activation x <dL/dx, decoder direction>, every latent can score."""
    return r.pre * decoder_dot(r.grad.to(r.decoder.dtype), r.decoder)


@register("attribution_abs", needs_grad=True)
def attribution_abs(r: Readout) -> Tensor:
    """|attribution|: latents with the largest first-order effect on the loss, either sign."""
    return attribution(r).abs()


@register("attribution_neg", needs_grad=True)
def attribution_neg(r: Readout) -> Tensor:
    """-attribution: latents whose removal would raise the loss most (to first order)."""
    return -attribution(r)


@register("activation", needs_grad=False)
def activation(r: Readout) -> Tensor:
    """The paper's ablation: the most active latents, no gradient involved."""
    return r.acts
