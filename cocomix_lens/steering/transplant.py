"""`transplant`: patch concept vectors c_t from one prompt into another, as a SteeringSpec."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cocomix_lens.steering.spec import Edit, SteeringSpec

_HOOK = "concept.hook_vector"


def transplant(model, source_text: str, target_text: str, positions: Sequence[int],
               target_positions: Sequence[int] | None = None) -> SteeringSpec:
    """A spec that replaces the target's c_t at `target_positions` (default: `positions`) by
    the source's c_t at `positions` (token indices; negative ones count from each text's end).

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
    """(c_t [len(positions), d_model] of `text`, the absolute positions)."""
    tokens = model.to_tokens(text)
    n = tokens.shape[1]
    if any(not -n <= p < n for p in positions):
        raise ValueError(f"positions {list(positions)} out of range for {text[:40]!r} "
                         f"({n} tokens); fix: use indices in -{n}..{n - 1}")
    absolute = [p % n for p in positions]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=_HOOK)
    return cache[_HOOK][0, absolute].float(), absolute
