"""`Sampling`: how a continuation is sampled, defined once (imports no torch, so the CLI can
derive its flags from it at start-up).

    model.generate("The ship", **Sampling(seed=3).kwargs(), steering=spec)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cocomix_lens.bounds import SEED_MAX, bounded, check_fields


@dataclass(frozen=True)
class Sampling:
    """How one continuation is sampled: the only definition, passed whole to every steered
    generation (`model.generate(prompt, **sampling.kwargs())`, the steering evaluation, its
    sweeps and screen, `cocomix-lens generate` and `steer-eval`, the app). The CLI's flags
    are its fields, with these docstrings as help."""

    max_new_tokens: int = bounded(48, 0, 1 << 20)
    """Tokens to generate after the prompt (fewer when <|endoftext|> comes first)."""
    temperature: float = bounded(1.0, 0, 100, integer=False)
    """Sampling temperature; 0 is greedy. 1.0 samples the model's own distribution."""
    top_p: float | None = bounded(0.95, 0, 1, integer=False, lo_open=True)
    """Nucleus sampling: keep the smallest set of tokens holding this probability mass."""
    top_k: int | None = bounded(None, 1, 1 << 24, integer=True)
    """Keep only the k most likely tokens (None: all)."""
    seed: int = bounded(0, 0, SEED_MAX)
    """Seed of the sampler (the same seed gives the same text)."""

    def __post_init__(self) -> None:
        check_fields(self)

    def kwargs(self) -> dict:
        """As keyword arguments of `generate` / `stream`."""
        return asdict(self)


def check_sampling(max_new_tokens: int, temperature: float, top_k: int | None,
                   top_p: float | None) -> None:
    """One-line errors for sampling settings out of range."""
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens={max_new_tokens} must be >= 0")
    if temperature < 0:
        raise ValueError(f"temperature={temperature} must be >= 0 (0 = greedy)")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k={top_k} must be >= 1 or None")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p} must be in (0, 1] or None")
