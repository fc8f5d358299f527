"""The steering operations: a registry of what each edit does, where and in which order.

The concept head computes  z = concept logits -> a = raw top-k of z -> c_t = compress(a).
Edits apply at three hook points, in this order (edits of one op in spec order):

1. `concept.hook_logits` (before top-k, all C logits z):
   - scale  z_c *= value (the paper's method, factors -10..10). A concept acts only once it
            is in the top-k. On a *negative* logit a factor > 1 pushes it further down and out
            of the top-k, a factor in (0, 1) pulls it up toward 0, a negative factor flips it
            positive: to promote a concept whose logit is negative use add or force.
   - add    z_c += value * std_c, with std_c the concept's logit std (the edit's `std`, else
            the `logit_std` given to steer(), else measured: the std of z_c over the prompt's
            positions, before any edit). Moves negative and positive logits alike.
   - ban    z_c = -inf: never in the top-k.
   - force  c is in the top-k: a logit already above the (k - n + 1)-th largest of the other
            logits (n = concepts forced at that position) is kept, a lower one (negative or
            not) is raised just above it, so it displaces the weakest selected concept and
            enters with about that concept's weight.
2. `concept.hook_acts` (after top-k): set replaces the kept values by the given concepts and
   weights (everything else 0). Hooking hook_acts makes the compressor use its dense path.
3. `concept.hook_vector` (c_t): vector adds value * W_comp[c] (the compressor row of c, in the
   head's normalised units) or value * the given d_model vector.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

# (edit, local positions) pairs of one op, as selected for the current forward chunk.
Items = list[tuple["object", "slice | Tensor"]]


@dataclass(frozen=True)
class Op:
    stage: str  # "logits", "acts" or "vector": the hook the op edits
    fields: tuple[str, ...]  # Edit fields the op reads (besides op and positions)
    required: tuple[str, ...]
    example: str  # the JSON an error message offers as the fix


def _scale(z: Tensor, items: Items, ctx) -> Tensor:
    for edit, sel in items:
        z[:, sel, edit.concept] *= edit.value
    return z


def _add(z: Tensor, items: Items, ctx) -> Tensor:
    for edit, sel in items:
        z[:, sel, edit.concept] += edit.value * ctx.std_of(edit)
    return z


def _ban(z: Tensor, items: Items, ctx) -> Tensor:
    for edit, sel in items:
        z[:, sel, edit.concept] = float("-inf")
    return z


def _force(z: Tensor, items: Items, ctx) -> Tensor:
    """Raise every forced logit just above the (k - n + 1)-th largest unforced logit of its
    position (n forced there), so the top-k holds all forced concepts."""
    k = ctx.top_k
    forced = torch.zeros(z.shape[1:], dtype=torch.bool, device=z.device)  # [pos, C]
    for edit, sel in items:
        forced[sel, edit.concept] = True
    n = forced.sum(-1)  # [pos]
    top = z.masked_fill(forced, float("-inf")).topk(k, dim=-1).values  # [batch, pos, k]
    rank = (k - n).clamp(0, k - 1)  # 0-based index of the (k - n + 1)-th largest
    threshold = top.gather(-1, rank.expand(z.shape[0], -1)[..., None])
    floor = torch.nextafter(threshold, torch.full_like(threshold, float("inf")))
    return torch.where(forced, torch.maximum(z, floor), z)


def _set(acts: Tensor, items: Items, ctx) -> Tensor:
    for edit, sel in items:
        ids = torch.tensor(edit.concepts, device=acts.device)
        w = torch.tensor(edit.weights, device=acts.device, dtype=acts.dtype)
        acts[:, sel] = 0.0
        rows = sel[:, None] if isinstance(sel, Tensor) else sel  # broadcast against ids
        acts[:, rows, ids] = w
    return acts


def _vector(c: Tensor, items: Items, ctx) -> Tensor:
    for edit, sel in items:
        c[:, sel] += edit.value * ctx.direction_of(edit)
    return c


OPS: dict[str, Op] = {
    "scale": Op("logits", ("concept", "value"), ("concept", "value"),
                '{"op": "scale", "concept": 12, "value": 4.0}'),
    "add": Op("logits", ("concept", "value", "std"), ("concept", "value"),
              '{"op": "add", "concept": 12, "value": 3.0}'),
    "ban": Op("logits", ("concept",), ("concept",), '{"op": "ban", "concept": 12}'),
    "force": Op("logits", ("concept",), ("concept",), '{"op": "force", "concept": 12}'),
    "set": Op("acts", ("concepts", "weights"), ("concepts", "weights"),
              '{"op": "set", "concepts": [12, 40], "weights": [5.0, 2.0]}'),
    "vector": Op("vector", ("concept", "value", "vector"), ("value",),
                 '{"op": "vector", "concept": 12, "value": 2.0}'),
}
APPLY: dict[str, Callable[[Tensor, Items, object], Tensor]] = {
    "scale": _scale, "add": _add, "ban": _ban, "force": _force, "set": _set, "vector": _vector}
ORDER = ("scale", "add", "ban", "force", "set", "vector")
STAGE_HOOKS = {"logits": "concept.hook_logits", "acts": "concept.hook_acts",
               "vector": "concept.hook_vector"}
