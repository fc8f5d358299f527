"""`Steering`: the hooks through which `steer(model, spec)` (spec.py) applies a SteeringSpec
for the duration of a `with` block.

The concept hooks are TransformerLens hooks added with `model.hooks(...)`; one forward
pre-hook on the model reads the KV cache's `n_tokens` (the forward's `past_kv_cache`
argument, found by name), so positions are absolute token indices both in a full forward and
in each cached decode step (steered cached generation equals steered uncached generation
token for token). The same pre-hook reads the forward's tokens when an edit acts on sentence
positions (sentences.py), so those are decided per batch row from the tokens generated so
far. Everything is removed on exit and on error.
"""

from __future__ import annotations

import inspect
from dataclasses import replace

import torch
from torch import Tensor

from cocomix_lens.steering.ops import OPS, ORDER, STAGE_HOOKS
from cocomix_lens.steering.sentences import (
    SENTENCE_SETS,
    sentence_end_table,
    since_sentence_end,
)

# Specs and edits are spec.py's SteeringSpec and Edit, left unnamed here: spec.py's `steer`
# builds this class, and an import back (even for type checkers only) would close a circle
# (tests/test_import_rules.py).


class Steering:
    """The state of one `steer` block: position offset, prompt length, measured stds.
    `steer` builds it from a SteeringSpec it has checked against the model."""

    def __init__(self, model, spec, prompt_len: int | None):
        self.model, self.spec = model, spec
        self.top_k = model.cfg.concept_top_k
        self.prompt_len = prompt_len
        self.offset = 0  # absolute position of the current forward's first token
        self._std: dict[int, float] = {}  # id(edit) -> the std an add / vector edit uses
        self._resid_std: Tensor | None = None  # [batch, pos, 1] std of the head's input
        self._forward_args = inspect.signature(model.forward)
        # id(edit) of the add / vector edits whose value is in logit stds
        self._want_std = {id(e) for e in spec.edits if "std" in OPS[e.op].fields
                          and e.vector is None and e.concept is not None}
        self._by_stage = {stage: [(op, [e for e in spec.edits if e.op == op])
                                  for op in ORDER if OPS[op].stage == stage]
                          for stage in STAGE_HOOKS}
        # sentence positions: which tokens end a sentence, and per batch row the tokens since
        # the last end, for the current chunk [batch, pos] and carried to the next one [batch]
        self._ends = sentence_end_table(model) if any(
            e.positions in SENTENCE_SETS for e in spec.edits) else None
        self._since: Tensor | None = None
        self._carry: Tensor | None = None

    def fwd_hooks(self) -> list[tuple[str, object]]:
        # the logits hook also measures prompt stds, so it runs whenever an edit needs one
        hooks = [(STAGE_HOOKS[stage], self._hook(stage)) for stage, ops in self._by_stage.items()
                 if any(edits for _, edits in ops) or (stage == "logits" and self._want_std)]
        if any(e.op == "vector" and e.vector is None for e in self.spec.edits):
            hooks.insert(0, ("concept.hook_in", self._read_resid_std))
        return hooks

    def before_forward(self, module, args: tuple, kwargs: dict) -> None:
        bound = self._forward_args.bind_partial(*args, **kwargs).arguments
        cache = bound.get("past_kv_cache")
        self.offset = 0 if cache is None else cache.n_tokens
        if self._ends is not None:
            tokens, _ = self.model._input_tokens(bound["input"], None)
            carry = None if self.offset == 0 else self._carry
            self._since, self._carry = since_sentence_end(tokens, self._ends, carry)

    def _read_resid_std(self, h: Tensor, hook) -> None:
        # the head writes c_t as (a @ W_comp + ...) * std(h) + mean(h): a concept row's
        # contribution in c_t's units carries this per-position std
        self._resid_std = h.std(-1, keepdim=True)

    def _hook(self, stage: str):
        ops = [(op, edits) for op, edits in self._by_stage[stage] if edits]

        def hook(x: Tensor, hook) -> Tensor:  # x: [batch, pos, n_concepts or d_model]
            n = x.shape[1]
            if self.prompt_len is None:
                self.prompt_len = self.offset + n
            if stage == "logits":
                self._measure_stds(x)
            for op, edits in ops:
                items = [(e, sel) for e in edits if (sel := self.select(e, n)) is not None]
                x = _apply(op, x, items, self)
            return x

        return hook

    def select(self, edit, n: int) -> slice | Tensor | None:
        """Rows of the current chunk (n positions from self.offset) the edit applies to: a
        slice or index tensor shared by the batch, or for sentence positions a bool mask
        [batch, n] (None: no row)."""
        pos, o = edit.positions, self.offset
        if pos in SENTENCE_SETS:
            mask = self._since < (edit.span or 1)
            if pos == "new_sentences":
                mask[:, : max(self.prompt_len - 1 - o, 0)] = False
            return mask if bool(mask.any()) else None
        if isinstance(pos, tuple):
            rows = [p - o for p in pos if o <= p < o + n]
            if not rows:
                return None
            return slice(rows[0], rows[0] + 1) if len(rows) == 1 else torch.tensor(
                rows, device=self.model.device)
        first_new = self.prompt_len - 1  # the slot that predicts the first new token
        lo, hi = {"all": (0, None), "prompt": (0, self.prompt_len),
                  "generated": (self.prompt_len, None),
                  "new_tokens": (first_new, first_new + (edit.span or 1))}[pos]
        start = max(lo - o, 0)
        stop = n if hi is None else min(hi - o, n)
        return slice(start, stop) if start < stop else None

    # ---- what ops read --------------------------------------------------------------------
    def std_of(self, edit) -> float:
        return self._std[id(edit)]

    def _measure_stds(self, z: Tensor) -> None:
        """Fix each add / vector edit's std once: its own, raw logits (unit "logit"), else
        measured over the prompt rows of the first chunk's logits `z` (unit "prompt")."""
        for edit in self.spec.edits:
            if id(edit) not in self._want_std or id(edit) in self._std:
                continue
            if edit.std is not None:
                self._std[id(edit)] = edit.std
            elif edit.unit == "logit":
                self._std[id(edit)] = 1.0
            else:
                self._std[id(edit)] = _prompt_std(z, edit, self.prompt_len - self.offset)

    def measured_stds(self):
        """The SteeringSpec with the std each edit used written in (after a forward)."""
        return replace(self.spec, edits=tuple(
            replace(e, std=self._std[id(e)]) if id(e) in self._std and e.std is None else e
            for e in self.spec.edits))

    def direction_of(self, edit, rows) -> Tensor:
        """vector: the d_model direction to add at `rows` ([batch, rows, d_model] or [d])."""
        if edit.vector is not None:
            return torch.tensor(edit.vector, device=self.model.device)
        row = self.model.concept.W_comp[edit.concept].detach()
        return self.std_of(edit) * self._resid_std[:, rows] * row


def _apply(op: str, x: Tensor, items: list, state: Steering) -> Tensor:
    """`op`'s edits applied to x [batch, pos, ...]: those on shared rows together, as the op
    does; those on per-row masks (sentence positions) grouped by mask, each group applied to
    every row of a copy and kept where its mask holds."""
    shared = [(e, sel) for e, sel in items if not _is_mask(sel)]
    if shared:
        x = OPS[op].apply(x, shared, state)
    groups: dict[tuple, tuple[Tensor, list]] = {}
    for e, sel in items:
        if _is_mask(sel):
            groups.setdefault((e.positions, e.span), (sel, []))[1].append((e, slice(None)))
    for mask, group in groups.values():
        edited = OPS[op].apply(x.clone(), group, state)
        x = torch.where(mask[..., None], edited, x)
    return x


def _is_mask(sel) -> bool:
    return isinstance(sel, Tensor) and sel.dtype == torch.bool


def _prompt_std(z: Tensor, edit, n_prompt: int) -> float:
    rows = z[:, : max(n_prompt, 0), edit.concept]
    if rows.numel() < 2:
        raise ValueError(f"{edit.op} on concept {edit.concept} measures its logit std on the "
                         "prompt, which has fewer than 2 tokens; fix: give the edit a std, "
                         "resolve it against a run's catalogue, or use a longer prompt")
    return float(rows.detach().float().std())
