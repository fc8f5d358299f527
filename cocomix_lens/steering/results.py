"""Results of a steering evaluation: per-sample scores, bootstrap estimates, JSON and tables.

Every condition of one arm scores the same prompts with the same seeds, so its samples are
paired: differences (steered - unsteered, steered - control) are bootstrapped over pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cocomix_lens.data.files import strict_json
from cocomix_lens.steering.stats import Estimate, bootstrap, bootstrap_diff

CONDITIONS = ("steered", "unsteered", "control")


@dataclass(frozen=True)
class MetricInfo:
    name: str
    kind: str  # "success" | "fluency"
    doc: str
    log_scale: bool = False  # values are logs (perplexity): shown as exp, differences as ratios


@dataclass
class ArmResult:
    """One steered model against its unsteered run and a random-concept control."""

    arm: str  # "cocomix" (the student's concept edit) or "sae" (teacher + SAE decoder direction)
    description: str  # what was steered, e.g. "scale concept 12 x8"
    concept: int
    control_concept: int
    strength: float
    metrics: list[MetricInfo]
    values: dict[str, dict[str, list[float]]]  # condition -> metric -> [n_samples]
    examples: dict[str, list[str]] = field(default_factory=dict)  # condition -> a few texts
    n_boot: int = 2000
    seed: int = 0
    level: float = 0.95

    def _vals(self, condition: str, metric: str) -> np.ndarray:
        return np.asarray(self.values[condition][metric], dtype=np.float64)

    def estimate(self, metric: str, condition: str = "steered") -> Estimate:
        """Mean and CI of `metric` under `condition` (NaN samples dropped), on the log scale
        for log-scale metrics (use `display` for perplexities)."""
        v = self._vals(condition, metric)
        return bootstrap(v[np.isfinite(v)], self.n_boot, self.seed, self.level)

    def diff(self, metric: str, a: str = "steered", b: str = "unsteered") -> Estimate:
        """Paired difference a - b of `metric` (pairs with a NaN side dropped)."""
        va, vb = self._vals(a, metric), self._vals(b, metric)
        ok = np.isfinite(va) & np.isfinite(vb)
        return bootstrap_diff(va[ok], vb[ok], self.n_boot, self.seed, self.level)

    def clear_of(self, metric: str) -> dict[str, bool]:
        """Whether the steered CI lies above the unsteered and the control CI, and whether the
        paired differences' CIs exclude zero (on the side steering should push)."""
        s = self.estimate(metric)
        return {"above_unsteered": s.above(self.estimate(metric, "unsteered")),
                "above_control": s.above(self.estimate(metric, "control")),
                "diff_unsteered_positive": self.diff(metric, "steered", "unsteered").lo > 0,
                "diff_control_positive": self.diff(metric, "steered", "control").lo > 0}

    def clear(self, metric: str) -> bool:
        """Whether the steered CI lies above both the unsteered and the control CI (the
        success test of the README and the table's `*`)."""
        c = self.clear_of(metric)
        return c["above_unsteered"] and c["above_control"]

    def to_dict(self) -> dict[str, Any]:
        summary = {}
        for m in self.metrics:
            summary[m.name] = {c: self.estimate(m.name, c).to_dict() for c in CONDITIONS}
            summary[m.name]["steered_minus_unsteered"] = self.diff(m.name).to_dict()
            summary[m.name]["steered_minus_control"] = self.diff(m.name, b="control").to_dict()
            if m.kind == "success":
                summary[m.name]["clear"] = self.clear_of(m.name)
        return {"arm": self.arm, "description": self.description, "concept": self.concept,
                "control_concept": self.control_concept, "strength": self.strength,
                "level": self.level, "n_boot": self.n_boot, "seed": self.seed,
                "metrics": [m.__dict__ for m in self.metrics], "summary": summary,
                "values": self.values, "examples": self.examples}

    def table(self) -> str:
        """A readable table: metric, steered, unsteered, control (mean [CI]) and paired
        differences; a `*` marks a success metric whose steered CI is above both others."""
        head = (f"{ARM_TITLES.get(self.arm, self.arm)}: {self.description} "
                f"(control: concept {self.control_concept}; {self.level:.0%} bootstrap CIs "
                f"over {self._n()} samples)")
        cols = ("metric", "steered", "unsteered", "control", "steered - unsteered",
                "steered - control")
        rows = [cols] + [self._row(m) for m in self.metrics]
        return head + "\n" + _format(rows)

    def _n(self) -> int:
        first = self.metrics[0].name
        return len(self.values["steered"][first])

    def _row(self, m: MetricInfo) -> tuple[str, ...]:
        ests = [display(self.estimate(m.name, c), m.log_scale) for c in CONDITIONS]
        diffs = [display(self.diff(m.name, "steered", b), m.log_scale, ratio=True)
                 for b in ("unsteered", "control")]
        clear = m.kind == "success" and self.clear(m.name)
        name = m.name + (" *" if clear else "") + (" (fluency)" if m.kind == "fluency" else "")
        return (name, *ests, *diffs)


ARM_TITLES = {"cocomix": "CoCoMix concept steering (student)",
              "sae": "SAE steering (teacher + decoder direction)"}


@dataclass
class SteeringEvaluation:
    """The result of `evaluate_steering`: one ArmResult per steered model."""

    arms: dict[str, ArmResult]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings,
                "arms": {name: arm.to_dict() for name, arm in self.arms.items()}}

    def to_json(self, **kwargs) -> str:
        return strict_json(self.to_dict(), **kwargs)

    def table(self) -> str:
        return "\n\n".join(arm.table() for arm in self.arms.values())


@dataclass
class SweepResult:
    """Dose-response: one ArmResult per strength (the unsteered run is shared)."""

    concept: int
    op: str
    arm: str
    strengths: list[float]
    results: list[ArmResult]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"concept": self.concept, "op": self.op, "arm": self.arm,
                "strengths": self.strengths, "settings": self.settings,
                "results": [r.to_dict() for r in self.results]}

    def means(self, metric: str, condition: str = "steered") -> list[float]:
        """The mean of `metric` at each strength (log-scale metrics stay logs)."""
        return [r.estimate(metric, condition).mean for r in self.results]

    def table(self, metrics: list[str] | None = None) -> str:
        """strength x metric: steered mean [CI] (control mean), then the unsteered row."""
        infos = self.results[0].metrics
        if metrics is not None:
            infos = [m for m in infos if m.name in metrics]
        rows: list[tuple[str, ...]] = [("strength", *(m.name for m in infos))]
        for s, r in zip(self.strengths, self.results):
            rows.append((f"{s:g}", *(
                f"{display(r.estimate(m.name), m.log_scale)} "
                f"(ctl {_num(_shown(r.estimate(m.name, 'control').mean, m.log_scale))})"
                for m in infos)))
        base = self.results[0]
        rows.append(("unsteered", *(display(base.estimate(m.name, "unsteered"), m.log_scale)
                                    for m in infos)))
        head = (f"{ARM_TITLES.get(self.arm, self.arm)} sweep: {self.op} concept {self.concept} "
                f"(control: concept {base.control_concept})")
        return head + "\n" + _format(rows)


def _shown(x: float, log_scale: bool) -> float:
    return math.exp(x) if log_scale else x


def _num(x: float) -> str:
    if not math.isfinite(x):
        return "nan"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def display(e: Estimate, log_scale: bool = False, ratio: bool = False) -> str:
    """'mean [lo, hi]'; log-scale values as exp, their differences as ratios 'x1.2'."""
    if log_scale:
        mark = "x" if ratio else ""
        return f"{mark}{_num(math.exp(e.mean))} [{_num(math.exp(e.lo))}, {_num(math.exp(e.hi))}]"
    return f"{_num(e.mean)} [{_num(e.lo)}, {_num(e.hi)}]"


def _format(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
