"""The concept loss as one autograd node whose backward is autograd's own, bit for bit.

Autograd differentiates `concept_loss`'s graph (logsumexp - gather, masked mean) into six
passes over [batch, pos, C] and four C-wide temporaries: `(z - lse).exp()`, `* g`, a dense
zero tensor that the label gather scatters into, and its sum with the softmax part. Only
k entries per position of that second tensor are non-zero, so here they are added in place
into the softmax part. Each elementwise op is the one autograd's formula runs (sub, exp, mul
by the same broadcast factors), and duplicate labels are summed among themselves first in
label order, starting from zero, as the dense scatter_add does: same bits, no dense temporary.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


def nll_terms(z: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(lse [batch, pos, 1], nll [batch, pos, k], valid [batch, pos, k]) of float logits z
    [batch, pos, C]: -log softmax(z)[label] per label, and which labels exist (negative =
    none; their nll is meaningless)."""
    valid = labels >= 0
    lse = logsumexp_rows(z)
    return lse, lse - z.gather(-1, labels.clamp(min=0)), valid


# Elements per logsumexp chunk (1 MB of floats): torch.logsumexp makes four passes (max,
# subtract into a new tensor, exp, sum); over a few rows at a time the last three read cache,
# not memory, and the C-wide temporary stays small. 69M shape: 82 ms -> 26 ms per forward.
LSE_CHUNK = 1 << 18


def logsumexp_rows(z: Tensor) -> Tensor:
    """z [..., C] -> logsumexp over C [..., 1], a few rows at a time. Each row is reduced by
    itself (torch splits a reduction over rows, never within one), so the bits are those of
    `z.logsumexp(-1, keepdim=True)`."""
    # At least two rows a chunk: a one-row reduction is the one torch splits within the row.
    rows = max(2, LSE_CHUNK // max(1, z.shape[-1]))
    z2 = z.reshape(-1, z.shape[-1])
    if z2.shape[0] < rows + 2:
        return z.logsumexp(dim=-1, keepdim=True)
    out = z.new_empty(z2.shape[0], 1)
    start = 0
    while start < z2.shape[0]:
        left = z2.shape[0] - start
        n = left if left < rows + 2 else rows  # never leaves a single row behind
        torch.logsumexp(z2.narrow(0, start, n), -1, keepdim=True, out=out.narrow(0, start, n))
        start += n
    return out.view(*z.shape[:-1], 1)


class ConceptCE(torch.autograd.Function):
    """(z [batch, pos, C] float, labels [batch, pos, k] int64) -> mean CE over valid labels."""

    @staticmethod
    def forward(ctx, z: Tensor, labels: Tensor) -> Tensor:
        lse, nll, valid = nll_terms(z, labels)
        denom = valid.sum().clamp(min=1)
        ctx.save_for_backward(z, lse, labels, valid, denom)
        return (nll * valid).sum() / denom

    @staticmethod
    @once_differentiable  # lse is saved without its graph: a second derivative would be wrong
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        z, lse, labels, valid, denom = ctx.saved_tensors
        # Autograd's chain for (nll * valid).sum() / denom, op by op.
        g_nll = (grad / denom).expand(valid.shape) * valid  # [batch, pos, k]
        g_lse = g_nll.sum(-1, keepdim=True)  # SubBackward's sum_to onto lse's shape
        dz = torch.sub(z, lse).exp_().mul_(g_lse)  # LogsumexpBackward: g * exp(z - lse)
        _add_label_grads(dz, labels.clamp(min=0), -g_nll)
        return dz, None


def _add_label_grads(dz: Tensor, idx: Tensor, g: Tensor) -> None:
    """dz[..., idx[..., j]] += sum of g[..., j'] over the j' with that index, in place:
    the dense `zeros.scatter_add(-1, idx, g)` autograd adds to dz, at its non-zeros only."""
    k = idx.shape[-1]
    flat_idx, flat_g = idx.reshape(-1, k), g.reshape(-1, k)
    # first[r, j]: the first j' with the same index as j; duplicates are summed into it.
    same = flat_idx.unsqueeze(-1) == flat_idx.unsqueeze(-2)  # [rows, k, k]
    first = same.int().argmax(-1)  # [rows, k]
    summed = torch.zeros_like(flat_g).scatter_add_(-1, first, flat_g)
    keep = first == torch.arange(k, device=idx.device)
    rows = torch.arange(flat_idx.shape[0], device=idx.device).unsqueeze(-1).expand_as(keep)
    dz.view(-1, dz.shape[-1]).index_put_((rows[keep], flat_idx[keep]), summed[keep],
                                        accumulate=True)
