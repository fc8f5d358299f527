"""`transplant`: patch concept vectors c_t from one prompt into another, as a SteeringSpec;
`transplant_effect`: how far it moves the next token, beside random edits of the same size.

    spec = transplant(model, "Paris is the capital of", "Berlin is the capital of", [-1])
    transplant_effect(model, spec, "Berlin is the capital of").summary()
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace

import numpy as np
import torch

from cocomix_lens.steering.spec import Edit, SteeringSpec

_HOOK = "concept.hook_vector"


def transplant(model, source_text: str, target_text: str, positions: Sequence[int],
               target_positions: Sequence[int] | None = None) -> SteeringSpec:
    """A spec that replaces the target's c_t at `target_positions` (default: `positions`) by
    the source's c_t at `positions` (indices of each text's tokens; negative ones count from
    its end). Both texts are encoded as generation encodes a prompt (after <|endoftext|>), so
    the spec's absolute positions are those of `model.generate(target_text, ...)`.

    It is a list of `vector` edits (source c_t - target c_t at each position), so it composes
    with other edits, saves as JSON and applies with `steer` or `generate(..., steering=)`:

        spec = transplant(model, "Paris is the capital of", "Berlin is the capital of", [-1])
        model.generate("Berlin is the capital of", 5, temperature=0, steering=spec)
    """
    target_positions = positions if target_positions is None else target_positions
    if len(target_positions) != len(positions):
        raise ValueError(f"{len(positions)} source positions but {len(target_positions)} "
                         "target positions; fix: pass one target position per source position")
    src, src_at = _vectors(model, source_text, positions)
    tgt, tgt_at = _vectors(model, target_text, target_positions)
    edits = [Edit("vector", value=1.0, positions=(t,), vector=tuple((s_vec - t_vec).tolist()))
             for s_vec, t_vec, t in zip(src, tgt, tgt_at)]
    return SteeringSpec(tuple(edits))


def _vectors(model, text: str, positions: Sequence[int]) -> tuple[torch.Tensor, list[int]]:
    """(c_t [len(positions), d_model] of `text`, the absolute positions in its prompt
    encoding: text token p sits at p + 1, after the leading <|endoftext|>)."""
    tokens = model.to_tokens(text, prepend_bos=True)
    n = tokens.shape[1] - 1
    if any(not -n <= p < n for p in positions):
        raise ValueError(f"positions {list(positions)} out of range for {text[:40]!r} "
                         f"({n} tokens); fix: use indices in -{n}..{n - 1}")
    absolute = [p % n + 1 for p in positions]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=_HOOK)
    return cache[_HOOK][0, absolute].float(), absolute


@dataclass(frozen=True)
class TransplantEffect:
    """How far a transplant moves the next-token distribution after the target text, beside
    random directions of the same norm at the same positions (the control)."""

    kl: float
    """KL(steered || unsteered) of the next-token distribution, nats."""
    control_kl: tuple[float, ...]
    """The same for each random-direction control."""
    top_before: tuple[str, ...]
    top_after: tuple[str, ...]

    @property
    def p(self) -> float:
        """Share of controls moving the distribution at least as far (with the transplant
        itself counted, so never 0): small = an effect beyond a random edit of that size."""
        return (1 + sum(c >= self.kl for c in self.control_kl)) / (1 + len(self.control_kl))

    def summary(self) -> str:
        c = np.asarray(self.control_kl)
        verdict = ("an effect beyond random directions of the same norm" if self.p <= 0.05
                   else "no effect beyond random directions of the same norm")
        return (f"next-token KL {self.kl:.3g} nats vs controls median {np.median(c):.3g} "
                f"[{c.min():.3g}, {c.max():.3g}] (p = {self.p:.2f}): {verdict}; top tokens "
                f"{list(self.top_before)} -> {list(self.top_after)}")


def transplant_effect(model, spec: SteeringSpec, target_text: str, n_controls: int = 19,
                      seed: int = 0, top: int = 5) -> TransplantEffect:
    """The measured effect of a transplant `spec` on `target_text` (module docstring of
    TransplantEffect), reported whether or not there is one."""
    from cocomix_lens.data.tokenizer import prompt_ids
    from cocomix_lens.steering.spec import steer

    if n_controls < 1:
        raise ValueError(f"n_controls={n_controls}; fix: pass at least 1")
    ids = torch.tensor([prompt_ids(model.tokenizer, target_text)], device=model.device)

    def next_logp(s: SteeringSpec | None) -> torch.Tensor:
        with torch.no_grad(), steer(model, s) if s is not None else nullcontext():
            return model(ids)[0, -1].float().log_softmax(-1)

    base, moved = next_logp(None), next_logp(spec)
    gen = torch.Generator().manual_seed(seed)
    controls = []
    for _ in range(n_controls):
        edits = []
        for e in spec.edits:
            v = torch.tensor(e.vector) if e.vector is not None else None
            if v is None:
                raise ValueError("transplant_effect measures vector edits with given vectors "
                                 "(what transplant returns); fix: pass transplant's spec")
            r = torch.randn(v.shape, generator=gen)
            edits.append(replace(e, vector=tuple((r * v.norm() / r.norm()).tolist())))
        controls.append(_kl(next_logp(SteeringSpec(tuple(edits))), base))
    words = lambda lp: tuple(model.to_str_tokens(lp.topk(top).indices.cpu()))  # noqa: E731
    return TransplantEffect(_kl(moved, base), tuple(controls), words(base), words(moved))


def _kl(logp: torch.Tensor, base: torch.Tensor) -> float:
    return float((logp.exp() * (logp - base)).sum())
