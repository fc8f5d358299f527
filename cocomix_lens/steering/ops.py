"""The steering operations: one registry entry per op carries everything about it.

The concept head computes  z = concept logits -> a = raw top-k of z -> c_t = compress(a).
Edits apply at three hook points, in the order of `OPS` (edits of one op in spec order):

1. `concept.hook_logits` (before top-k, all C logits z): scale, add, ban, force.
2. `concept.hook_acts` (after top-k): set. Hooking hook_acts makes the compressor use its
   dense path.
3. `concept.hook_vector` (c_t, in residual-stream units): vector.

Strength units. `add` and `vector` measure their value in stds of the concept's logit: the
edit's `std` field when it has one, else its `unit` says where the std comes from:
"catalogue" (the default: the run's catalogue std over validation tokens, filled in by
`SteeringSpec.resolve(run)`; steering an unresolved edit is refused), "prompt" (measured on
the prompt's positions before any edit) or "logit" (std 1: raw logits). `SteeringSpec.resolve`
writes the absolute std into every edit, so a saved spec reproduces without the run.

A new op is one `Op` entry here: how it applies, its one-line description, its strength's
unit, label, range and default. Spec checks, the app's controls, descriptions of edits and
the evaluation harness all read this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

# (edit, local positions) pairs of one op, as selected for the current forward chunk.
Items = list[tuple["object", "slice | Tensor"]]
STAGE_HOOKS = {"logits": "concept.hook_logits", "acts": "concept.hook_acts",
               "vector": "concept.hook_vector"}
UNITS = ("catalogue", "prompt", "logit")
"""Where an add / vector edit's logit std comes from (module docstring)."""


@dataclass(frozen=True)
class Op:
    """Everything about one steering operation."""

    stage: str
    """The hook the op edits: "logits", "acts" or "vector" (STAGE_HOOKS)."""
    apply: Callable[[Tensor, Items, object], Tensor]
    """(activation at the stage, [(edit, rows)], the Steering state) -> edited activation."""
    doc: str
    """One line: what the op does."""
    fields: tuple[str, ...]
    """Edit fields the op reads (besides op and positions)."""
    required: tuple[str, ...]
    example: str
    """The JSON an error message offers as the fix."""
    describe: Callable[[object], str]
    """Edit -> one line naming the concept and the strength with its unit."""
    unit: str = ""
    """What the strength (`value`, set: the weight) is measured in; "" for no strength."""
    label: str = ""
    """The strength control's label."""
    range: tuple[float, float] | None = None
    """Useful strengths (the app's slider); None: the op takes no strength."""
    default: float | None = None
    """The strength a user gets when nothing better is known (measured: see `source`)."""
    source: str = ""
    """Where `default` comes from (a measurement and the command that reproduces it)."""


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
    """Raise every forced logit just above the largest unforced logit of its position, so the
    forced concepts hold the top of the top-k and enter with the strongest concept's weight."""
    forced = torch.zeros(z.shape[1:], dtype=torch.bool, device=z.device)  # [pos, C]
    for edit, sel in items:
        forced[sel, edit.concept] = True
    top = z.masked_fill(forced, float("-inf")).amax(-1, keepdim=True)  # [batch, pos, 1]
    floor = torch.nextafter(top, torch.full_like(top, float("inf")))
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
        c[:, sel] += edit.value * ctx.direction_of(edit, sel)
    return c


def _concept(e) -> str:
    return f"concept {e.concept}"


def _std_units(e) -> str:
    if e.std is not None:
        return f"std (= {e.std:.3g} logits, {e.unit or 'catalogue'})"
    return f"{e.unit or 'catalogue'} std"


MEASURED = ("benchmarks/steer_ops.py on the demo run (farming concept 275, 64 samples): the "
            "largest measured strength keeping the grammatical share within 0.10 of "
            "unsteered")
"""Where the defaults of scale, add and vector come from (benchmarks/results/steer_ops)."""


OPS: dict[str, Op] = {
    "scale": Op(
        "logits", _scale, "multiply the concept's logit by a factor (the paper's steering)",
        ("concept", "value"), ("concept", "value"),
        '{"op": "scale", "concept": 12, "value": 4.0}',
        lambda e: f"scale {_concept(e)}'s logit x{e.value:g}",
        unit="factor", label="factor on the predicted logit", range=(-10.0, 10.0),
        default=4.0, source=MEASURED + " (x8: on-topic 0.40 but grammar 0.80)"),
    "add": Op(
        "logits", _add, "add stds of the concept's logit to it (moves it into the top-k)",
        ("concept", "value", "std", "unit"), ("concept", "value"),
        '{"op": "add", "concept": 12, "value": 6.0}',
        lambda e: f"add {e.value:g} {_std_units(e)} to {_concept(e)}",
        # +-30 as vector's: measured edits go past 10 (steer-bench's single-concept add chose 20
        # std, make demo's screen 12), and the app's slider must hold what "Use this edit" gives
        unit="std", label="logit standard deviations added", range=(-30.0, 30.0),
        default=8.0, source=MEASURED),
    "ban": Op(
        "logits", _ban, "set the concept's logit to -inf: never in the top-k",
        ("concept",), ("concept",), '{"op": "ban", "concept": 12}',
        lambda e: f"ban {_concept(e)} from the top-k"),
    "force": Op(
        "logits", _force, "put the concept at the top of the top-k (the strongest weight)",
        ("concept",), ("concept",), '{"op": "force", "concept": 12}',
        lambda e: f"force {_concept(e)} to the top of the top-k"),
    "set": Op(
        "acts", _set, "replace the top-k by the given concepts and weights",
        ("concepts", "weights"), ("concepts", "weights"),
        '{"op": "set", "concepts": [12, 40], "weights": [5.0, 2.0]}',
        lambda e: "set the top-k to " + ", ".join(
            f"{c} (weight {w:g})" for c, w in zip(e.concepts, e.weights)),
        unit="weight", label="weight of the concept replacing the top-k", range=(0.0, 30.0),
        default=10.0, source="benchmarks/steer_ops.py on the demo run: one concept replacing "
                             "the whole top-k leaves no grammatical sentence at weights 1-10; "
                             "use add or vector to steer toward a concept"),
    "vector": Op(
        "vector", _vector, "add the concept's compressor row to c_t, as if its activation "
                           "rose by value stds (or value x a given d_model vector)",
        ("concept", "value", "vector", "std", "unit"), ("value",),
        '{"op": "vector", "concept": 12, "value": 6.0}',
        lambda e: (f"add {e.value:g} x a given vector to c_t" if e.vector is not None else
                   f"add {_concept(e)}'s compressor row x {e.value:g} {_std_units(e)} to c_t"),
        unit="std", label="activation rise, in logit stds", range=(-30.0, 30.0),
        default=8.0, source=MEASURED + " (12: on-topic 0.47 but grammar 0.83)"),
}
ORDER = tuple(OPS)
"""The order edits apply in: the registry's order."""


def describe_edit(edit) -> str:
    """One line: what the edit does and where (the only describer of an edit)."""
    pos = edit.positions
    where = "" if pos == "all" else (f" at {pos} positions" if isinstance(pos, str)
                                     else " at positions " + ",".join(map(str, pos)))
    n = edit.span or 1
    if pos in ("sentences", "new_sentences"):  # sentences.SENTENCE_SETS
        where = (f" at the first {n} slot{'s' if n > 1 else ''} of each sentence"
                 + (" from the prompt's end on" if pos == "new_sentences" else ""))
    elif pos == "new_tokens":  # spec.START_SET
        where = f" at the first {n} new token{'s' if n > 1 else ''}, then released"
    return OPS[edit.op].describe(edit) + where
