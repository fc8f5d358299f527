"""What the study trains: arms (an objective and the label method it learns from) and the
study's settings.

Every arm of one seed shares the model-init seed, the windows and their order (all label
caches share the pipeline's window, so the sampler aligns them alike) and the token budget.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_METHOD = "attribution"  # the official code's labels (the pipeline's default)


@dataclass(frozen=True)
class Arm:
    """One trained configuration."""

    name: str
    objective: str
    """training.objectives name."""
    method: str = DEFAULT_METHOD
    """Label method of the cache it learns from (ignored by objectives without labels: their
    cache only aligns the windows)."""
    help: str = ""


ARMS: dict[str, Arm] = {a.name: a for a in (
    Arm("ntp", "ntp", help="next-token prediction, width-matched baseline"),
    Arm("cocomix", "cocomix", help="CoCoMix, signed attribution labels (the official code)"),
    Arm("kd", "kd", help="NTP + 0.1 KL(teacher || student)"),
    Arm("pause", "pause", help="learned pause vectors interleaved at the insert layer"),
    Arm("cocomix_activation", "cocomix", "activation", help="CoCoMix, SAE activation labels"),
    Arm("cocomix_preact", "cocomix", "attribution_preact",
        help="CoCoMix, pre-activation attribution labels (the paper's text)"),
    Arm("cocomix_abs", "cocomix", "attribution_abs", help="CoCoMix, |attribution| labels"),
    Arm("cocomix_neg", "cocomix", "attribution_neg", help="CoCoMix, negated attribution labels"),
    Arm("add", "add", help="CoCoMix with c_t added to h_t instead of interleaved"),
    Arm("concept_only", "concept_only", help="concept loss, nothing mixed"),
    Arm("mix_only", "mix_only", help="concepts interleaved, no concept loss"),
)}
"""Every arm the issue asks for, in report order."""


def get_arms(names: list[str] | None) -> list[Arm]:
    """The arms named (default: all), refusing unknown names; ntp always comes first because
    every claim compares against it or needs its final loss."""
    if not names:
        return list(ARMS.values())
    bad = [n for n in names if n not in ARMS]
    if bad:
        raise ValueError(f"unknown study arm {bad[0]!r}; choose from {', '.join(ARMS)}")
    chosen = ["ntp"] + [n for n in names if n != "ntp"]
    return [ARMS[n] for n in dict.fromkeys(chosen)]


@dataclass
class StudySettings:
    """How the study trains and evaluates (recorded in study/settings.json)."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Seeds; each sets model init and the data order shared by every arm."""
    budget: int | None = None
    """Training tokens per run (default: the pipeline's student budget)."""
    eval_points: int = 8
    """Validation evaluations per run, at regular token counts (the curves)."""
    eval_batches: int | None = None
    """Validation batches per evaluation (default: the pipeline's); one fixed val set."""
    steer_samples: int = 16
    """Generations per condition for the steering claim (f); 0 skips it."""
    probe_tokens: int = 8192
    """Tokens of hidden states per split for the linear probes of claim (h)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
