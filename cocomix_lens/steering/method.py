"""A steering method: anything that edits a generation, so one harness can evaluate them all.

`Method` is the interface of the evaluation harness (evaluate.py): a method names the run
model that generates ("student" or "teacher"), optionally edits the prompt text, and
optionally opens a context around generation (hooks). The harness samples every method with
the same `Sampling`, prompts and seeds, and scores the continuation (never the prompt) with
the same scorers, steering off. Constructors for the methods this project measures:

    spec_method(run, spec)                   # a SteeringSpec (CoCoMix concept edits)
    sae_method(run, concept, strength, ps)   # classic SAE steering of the teacher
    residual_method(hook, direction, ...)    # any d_model direction added at a hook
    prompt_method(transform, ...)            # a prompt transformation

`retarget(concept)` gives the same edit aimed elsewhere: the random-concept control. A method
without one takes its control explicitly (`evaluate_methods(..., control=...)`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cocomix_lens.concepts.extractor import decoder_directions
from cocomix_lens.data.tokenizer import prompt_ids
from cocomix_lens.steering.spec import Edit, SteeringSpec, parse_position_label

MODELS = ("student", "teacher")
"""The run models a method can generate with."""


@dataclass(frozen=True)
class Method:
    """Anything that edits a generation (module docstring)."""

    description: str
    """One line: what the method does, e.g. "add 6 std (= 1.2 logits) to concept 506"."""
    model: str = "student"
    """The run model that generates: "student" (CoCoMix) or "teacher"."""
    hooks: Callable[[nn.Module, int], AbstractContextManager] | None = None
    """(model, prompt length in tokens) -> a context the generation runs in; None: none."""
    prompt: Callable[[str], str] | None = None
    """Prompt text -> the text actually given to the model; None: unchanged."""
    record: dict[str, Any] = field(default_factory=dict)
    """JSON-ready: everything needed to rebuild the method (resolved spec, direction norm)."""
    concept: int | None = None
    """The concept it steers toward (what concept-reading scorers read), if any."""
    strength: float = float("nan")
    retarget: Callable[[int], Method] | None = None
    """concept -> the same edit aimed at another concept (the random-concept control)."""

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model={self.model!r}; fix: use one of {MODELS}")

    def context(self, model: nn.Module, prompt_len: int) -> AbstractContextManager:
        return nullcontext() if self.hooks is None else self.hooks(model, prompt_len)

    def prompt_text(self, text: str) -> str:
        return text if self.prompt is None else self.prompt(text)

    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description, "model": self.model, "concept": self.concept,
                "strength": self.strength, **self.record}


def spec_method(run: Any, spec: SteeringSpec) -> Method:
    """A SteeringSpec as a Method: catalogue stds resolved against `run` (and recorded), its
    concept the first edit's (`set`: first listed); `retarget` replaces that id in every edit
    and re-resolves stds for the new concept (explicit vectors stay)."""
    if not isinstance(spec, SteeringSpec):
        raise ValueError(f"expected a SteeringSpec, got {type(spec).__name__}; fix: "
                         "SteeringSpec.load('spec.json')")
    if not spec.edits:
        raise ValueError("the steering spec has no edits; fix: add one, e.g. "
                         '{"edits": [{"op": "scale", "concept": 12, "value": 4}]}')
    spec = spec.resolve(run)
    first = spec.edits[0]
    concept = first.concept if first.concept is not None else (
        first.concepts[0] if first.concepts else None)

    def retarget(c: int) -> Method:
        return spec_method(run, _retarget(spec, concept, c))

    value = first.value if first.value is not None else float("nan")
    return Method(spec.describe(), "student",
                  lambda model, n: spec.context(model, n), None,
                  {"spec": spec.to_dict()}, concept, float(value),
                  None if concept is None else retarget)


def _retarget(spec: SteeringSpec, old: int, new: int) -> SteeringSpec:
    def move(e: Edit) -> Edit:
        concepts = None if e.concepts is None else tuple(new if c == old else c
                                                         for c in e.concepts)
        moved = e.concept == old
        # a std belongs to its concept: the new one takes its own from the catalogue
        std = None if moved and (e.unit or "catalogue") == "catalogue" else e.std
        return replace(e, concept=new if moved else e.concept, concepts=concepts, std=std)
    return replace(spec, edits=tuple(move(e) for e in spec.edits))


RESIDUAL_POSITIONS = ("all", "generated", "new_tokens")
"""Where `residual_method` adds its direction (spec.py's position sets of those names)."""


def residual_method(hook_name: str, direction: Tensor | Sequence[float], description: str,
                    model: str = "student", concept: int | None = None,
                    strength: float = 1.0, positions: str = "all") -> Method:
    """Add `strength` x `direction` [d_model] to the residual stream at `hook_name` at every
    position ("all"), at generated positions only ("generated"), or at the first n slots from
    the prompt's last token on ("new_tokens:n", as spec.py's position set)."""
    where, span = _residual_positions(positions)
    vec = torch.as_tensor(direction, dtype=torch.float32).detach()
    if vec.ndim != 1 or not torch.isfinite(vec).all():
        raise ValueError("direction must be a finite [d_model] vector; fix: pass one row")

    def hooks(m: nn.Module, prompt_len: int) -> AbstractContextManager:
        d = (strength * vec).to(m.device)
        if where == "all":
            return m.hooks(fwd_hooks=[(hook_name, lambda x, hook: x + d)])
        lo, hi = {"generated": (prompt_len, None),
                  "new_tokens": (prompt_len - 1, prompt_len - 1 + span)}[where]
        chunk = _Chunk(m)

        def add(x: Tensor, hook: Any) -> Tensor:  # x [batch, rows, d_model]
            # rows per token: 2 on the interleaved stream (a token and its concept slot)
            o, n, per = chunk.offset, chunk.n_tokens, x.shape[1] // chunk.n_tokens
            a, b = max(lo, o) - o, (o + n if hi is None else min(hi, o + n)) - o
            if a >= b:
                return x
            x = x.clone()
            x[:, a * per:b * per] += d
            return x
        return chunk.around(m.hooks(fwd_hooks=[(hook_name, add)]))

    return Method(description, model, hooks, None,
                  {"hook": hook_name, "norm": float(strength * vec.norm()),
                   "positions": positions}, concept, float(strength))


def _residual_positions(positions: str) -> tuple[str, int]:
    try:
        where, span = parse_position_label(positions)
    except ValueError:
        where, span = None, None
    if where not in RESIDUAL_POSITIONS:
        raise ValueError(f"positions={positions!r}; fix: 'all', 'generated' or 'new_tokens:n'")
    return where, span or 1


class _Chunk:
    """Which tokens the model's current forward holds: `offset` (the KV cache's n_tokens, as
    steering/hooks.py reads it) and `n_tokens`, read by a forward pre-hook."""

    def __init__(self, model: nn.Module):
        self.model, self.offset, self.n_tokens = model, 0, 1
        self._args = inspect.signature(model.forward)

    def before_forward(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        bound = self._args.bind_partial(*args, **kwargs).arguments
        cache = bound.get("past_kv_cache")
        self.offset = 0 if cache is None else cache.n_tokens
        x = bound["input"]
        self.n_tokens = (x if isinstance(x, Tensor) else self.model.to_tokens(x)).shape[-1]

    @contextmanager
    def around(self, hooks: AbstractContextManager) -> Iterator[None]:
        handle = self.model.register_forward_pre_hook(self.before_forward, with_kwargs=True)
        try:
            with hooks:
                yield
        finally:
            handle.remove()


def sae_method(run: Any, concept: int, strength: float, prompts: Sequence[str]) -> Method:
    """Classic SAE steering of the teacher: add strength x (mean residual norm at the SAE hook
    over the tokens of `prompts`, each prompt run on its own) x latent `concept`'s unit decoder
    direction at every position."""
    if not np.isfinite(strength):
        raise ValueError(f"steering strength {strength} must be a finite number")
    hook_name = run.sae.cfg.metadata.hook_name
    unit = decoder_directions(run.sae)
    unit = unit / unit.norm(dim=-1, keepdim=True)
    norm = resid_norm(run.teacher, hook_name,
                      [torch.tensor(prompt_ids(run.tokenizer, p)) for p in prompts])

    def make(c: int) -> Method:
        m = residual_method(hook_name, norm * unit[c],
                            f"add {strength:g} x residual norm along SAE latent {c}",
                            "teacher", c, float(strength))
        return replace(m, record={**m.record, "resid_norm": norm}, retarget=make)

    return make(concept)


def prompt_method(transform: Callable[[str], str], description: str,
                  concept: int | None = None, model: str = "student") -> Method:
    """A prompt transformation (e.g. topic sentences before the opening); the continuation is
    scored, never the added text."""
    return Method(description, model, None, transform, {"prompt": description}, concept)


@torch.no_grad()
def resid_norm(model: nn.Module, hook_name: str, prompts: list[Tensor]) -> float:
    """Mean L2 norm of the residual at `hook_name` over every token of `prompts` ([pos] ids),
    each prompt its own sequence (prompts never attend to each other)."""
    norms = []
    for ids in prompts:
        _, cache = model.run_with_cache(ids[None].to(model.device), names_filter=hook_name)
        norms.append(cache[hook_name][0].norm(dim=-1))
    return float(torch.cat(norms).mean())
