"""Results of a steering evaluation: per-sample scores, bootstrap estimates, JSON and tables.

Every condition of one arm scores the same prompts with the same seeds, so its samples are
paired: differences (steered - unsteered, steered - control) are bootstrapped over pairs.
Sample i continues prompt i % len(prompts): `per_prompt` and `spread` show how the effect
depends on the prompt. Every result stores its method (with the resolved spec), its control,
the prompts and the sampling, so it re-runs from its JSON alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cocomix_lens.data.files import strict_json
from cocomix_lens.steering.stats import Estimate, bootstrap, bootstrap_diff, format_number
from cocomix_lens.tables import markdown_table

CONDITIONS = ("steered", "unsteered", "control")
ON_TARGET = ("oracle_on_target", "student_prob", "sae_act")
"""The on-target figure of a result: the first of these it measured."""


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
    prompts: list[str] = field(default_factory=list)  # sample i continues prompt i % len
    method: dict[str, Any] = field(default_factory=dict)  # Method.to_dict(): re-runnable
    control: dict[str, Any] = field(default_factory=dict)  # the control's Method.to_dict()

    def _vals(self, condition: str, metric: str) -> np.ndarray:
        return np.asarray(self.values[condition][metric], dtype=np.float64)

    def estimate(self, metric: str, condition: str = "steered") -> Estimate:
        """Mean and CI of `metric` under `condition` (NaN samples dropped), on the log scale
        for log-scale metrics (`Estimate.format` shows perplexities)."""
        v = self._vals(condition, metric)
        return bootstrap(v[np.isfinite(v)], self.n_boot, self.seed, self.level)

    def diff(self, metric: str, a: str = "steered", b: str = "unsteered") -> Estimate:
        """Paired difference a - b of `metric` (pairs with a NaN side dropped)."""
        va, vb = self._vals(a, metric), self._vals(b, metric)
        ok = np.isfinite(va) & np.isfinite(vb)
        return bootstrap_diff(va[ok], vb[ok], self.n_boot, self.seed, self.level)

    def on_target(self) -> str | None:
        """The metric that says whether text moved to the target (ON_TARGET), if measured."""
        names = {m.name for m in self.metrics}
        return next((m for m in ON_TARGET if m in names), None)

    def per_prompt(self, metric: str, condition: str = "steered") -> list[float]:
        """Mean of `metric` over each prompt's samples (NaN samples dropped), prompt order."""
        v = self._vals(condition, metric)
        n = max(len(self.prompts), 1)
        out = []
        for j in range(n):
            x = v[j::n]
            x = x[np.isfinite(x)]
            out.append(float(x.mean()) if x.size else float("nan"))
        return out

    def spread(self, metric: str, condition: str = "steered") -> dict[str, float]:
        """min / median / max over prompts of the per-prompt means."""
        x = np.asarray(self.per_prompt(metric, condition))
        x = x[np.isfinite(x)]
        if not x.size:
            return {"min": float("nan"), "median": float("nan"), "max": float("nan")}
        return {"min": float(x.min()), "median": float(np.median(x)), "max": float(x.max())}

    def prompt_table(self, metric: str | None = None) -> str:
        """Per prompt: the on-target metric steered / unsteered / control (a markdown table)."""
        metric = metric or self.on_target()
        if metric is None or not self.prompts:
            return ""
        cols = [self.per_prompt(metric, c) for c in CONDITIONS]
        rows = [(j, _short(p), *(format_number(c[j]) for c in cols))
                for j, p in enumerate(self.prompts)]
        sp = self.spread(metric)
        head = (f"{metric} per prompt (steered: min {format_number(sp['min'])}, median "
                f"{format_number(sp['median'])}, max {format_number(sp['max'])})")
        return head + "\n" + markdown_table(("#", "prompt", *CONDITIONS), rows, "rlrrr",
                                             pad=True)

    def examples_text(self) -> str:
        """The kept example continuations, condition by condition."""
        lines = []
        for cond in CONDITIONS:
            for j, text in enumerate(self.examples.get(cond, [])):
                prompt = self.prompts[j % len(self.prompts)] if self.prompts else ""
                lines.append(f"{cond:>9}: {_short(prompt)} >> {_short(text, 160)}")
        return "\n".join(lines)

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
            summary[m.name]["per_prompt"] = {c: self.per_prompt(m.name, c) for c in CONDITIONS}
            summary[m.name]["spread"] = self.spread(m.name)
        return {"arm": self.arm, "description": self.description, "concept": self.concept,
                "control_concept": self.control_concept, "strength": self.strength,
                "method": self.method, "control": self.control, "prompts": self.prompts,
                "level": self.level, "n_boot": self.n_boot, "seed": self.seed,
                "metrics": [m.__dict__ for m in self.metrics], "on_target": self.on_target(),
                "summary": summary, "values": self.values, "examples": self.examples}

    def table(self) -> str:
        """A readable table: metric, steered, unsteered, control (mean [CI]) and paired
        differences; a `*` marks a success metric whose steered CI is above both others."""
        head = (f"{ARM_TITLES.get(self.arm, self.arm)}: {self.description} "
                f"(control: concept {self.control_concept}; {self.level:.0%} bootstrap CIs "
                f"over {self._n()} samples)")
        cols = ("metric", "steered", "unsteered", "control", "steered - unsteered",
                "steered - control")
        parts = [head, markdown_table(cols, [self._row(m) for m in self.metrics], pad=True)]
        parts += [p for p in (self.prompt_table(), self.examples_text()) if p]
        return "\n\n".join(parts)

    def _n(self) -> int:
        first = self.metrics[0].name
        return len(self.values["steered"][first])

    def _row(self, m: MetricInfo) -> tuple[str, ...]:
        ests = [self.estimate(m.name, c).format(m.log_scale) for c in CONDITIONS]
        diffs = [self.diff(m.name, "steered", b).format(m.log_scale, ratio=True)
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
        rows = []
        for s, r in zip(self.strengths, self.results):
            rows.append((f"{s:g}", *(
                f"{r.estimate(m.name).format(m.log_scale)} "
                f"(ctl {format_number(r.estimate(m.name, 'control').mean, m.log_scale)})"
                for m in infos)))
        base = self.results[0]
        rows.append(("unsteered", *(base.estimate(m.name, "unsteered").format(m.log_scale)
                                    for m in infos)))
        head = (f"{ARM_TITLES.get(self.arm, self.arm)} sweep: {self.op} concept {self.concept} "
                f"(control: concept {base.control_concept})")
        return head + "\n" + markdown_table(("strength", *(m.name for m in infos)), rows,
                                             pad=True)


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
