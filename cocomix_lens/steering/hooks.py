"""`steer(model, spec)`: apply a SteeringSpec through hooks for the duration of a `with` block.

The concept hooks are TransformerLens hooks added with `model.hooks(...)`; one forward
pre-hook on the model reads the KV cache's `n_tokens`, so positions are absolute token indices
both in a full forward and in each cached decode step (steered cached generation equals
steered uncached generation token for token). Everything is removed on exit and on error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import Tensor

from cocomix_lens.steering.ops import APPLY, OPS, ORDER, STAGE_HOOKS
from cocomix_lens.steering.spec import Edit, SteeringSpec, validate_spec


@contextmanager
def steer(model, spec: SteeringSpec | Mapping,
          prompt_len: int | None = None) -> Iterator[Steering]:
    """Apply `spec` (or its dict form) to every forward of `model` inside the block.

    prompt_len: tokens of the prompt ("prompt" / "generated" positions); default: the token
    count of the first forward inside the block.
    """
    spec = spec if isinstance(spec, SteeringSpec) else SteeringSpec.from_dict(spec)
    state = Steering(model, spec, prompt_len)
    handle = model.register_forward_pre_hook(state.before_forward, with_kwargs=True)
    try:
        with model.hooks(fwd_hooks=state.fwd_hooks()):
            yield state
    finally:
        handle.remove()


class Steering:
    """The state of one `steer` block: position offset, prompt length, measured stds."""

    def __init__(self, model, spec: SteeringSpec, prompt_len: int | None):
        validate_spec(spec, model.cfg)
        self.model, self.spec = model, spec
        self.top_k = model.cfg.concept_top_k
        self.prompt_len = prompt_len
        self.offset = 0  # absolute position of the current forward's first token
        self._std: dict[int, float] = {}  # id(edit) -> the std used by an add edit
        self._by_stage = {stage: [(op, [e for e in spec.edits if e.op == op])
                                  for op in ORDER if OPS[op].stage == stage]
                          for stage in STAGE_HOOKS}

    def fwd_hooks(self) -> list[tuple[str, object]]:
        return [(STAGE_HOOKS[stage], self._hook(stage)) for stage, ops in self._by_stage.items()
                if any(edits for _, edits in ops)]

    def before_forward(self, module, args: tuple, kwargs: dict) -> None:
        cache = kwargs.get("past_kv_cache", args[5] if len(args) > 5 else None)
        self.offset = 0 if cache is None else cache.n_tokens

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
                if items:
                    x = APPLY[op](x, items, self)
            return x

        return hook

    def select(self, edit: Edit, n: int) -> slice | Tensor | None:
        """Rows of the current chunk (n positions from self.offset) the edit applies to."""
        pos, o = edit.positions, self.offset
        if isinstance(pos, tuple):
            rows = [p - o for p in pos if o <= p < o + n]
            if not rows:
                return None
            return slice(rows[0], rows[0] + 1) if len(rows) == 1 else torch.tensor(
                rows, device=self.model.device)
        lo, hi = {"all": (0, None), "prompt": (0, self.prompt_len),
                  "generated": (self.prompt_len, None)}[pos]
        start = max(lo - o, 0)
        stop = n if hi is None else min(hi - o, n)
        return slice(start, stop) if start < stop else None

    # ---- what ops read --------------------------------------------------------------------
    def std_of(self, edit: Edit) -> float:
        return self._std[id(edit)]

    def _measure_stds(self, z: Tensor) -> None:
        """Fix each add edit's std once: its own, else over the prompt rows of the first chunk."""
        for edit in self.spec.edits:
            if edit.op != "add" or id(edit) in self._std:
                continue
            if edit.std is not None:
                self._std[id(edit)] = edit.std
            else:
                self._std[id(edit)] = _prompt_std(z, edit.concept, self.prompt_len - self.offset)

    def direction_of(self, edit: Edit) -> Tensor:
        if edit.vector is not None:
            return torch.tensor(edit.vector, device=self.model.device)
        return self.model.concept.W_comp[edit.concept].detach()


def _prompt_std(z: Tensor, concept: int, n_prompt: int) -> float:
    rows = z[:, : max(n_prompt, 0), concept]
    if rows.numel() < 2:
        raise ValueError(f"add on concept {concept} measures its logit std on the prompt, "
                         "which has fewer than 2 tokens; fix: give the edit a std "
                         "(e.g. spec.with_stds(the catalogue logit_std)) or use a longer prompt")
    return float(rows.detach().float().std())
