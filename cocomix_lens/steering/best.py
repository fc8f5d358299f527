"""The best measured steering setting for a concept: what "Steer with this concept" prefills.

`best_setting(run, concept)` asks each reader of `SOURCES` in turn (the run's measured
steering results first) and falls back to the op registry's default; the answer says where
it came from. A new kind of results file is one more reader.

    s = best_setting(run, 506)   # Setting(op="add", strength=4.0, source="steer-eval ...")
    model.generate("The ship", steering=s.spec(506).resolve(run))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cocomix_lens.steering.ops import OPS
from cocomix_lens.steering.spec import SteeringSpec, op_edit

DEFAULT_OP = "add"
"""The op a concept is steered with when nothing was measured: the screen's op."""


@dataclass(frozen=True)
class Setting:
    """One op at one strength, and where that choice comes from."""

    op: str
    strength: float
    source: str

    def spec(self, concept: int) -> SteeringSpec:
        return SteeringSpec((op_edit(self.op, concept, self.strength),))


def _screen(run: Any, concept: int) -> Setting | None:
    """The run's densest-concept screen (training.steering_screen): the chosen add strength
    of its concept, or the screen's strength for a concept that passed the screen."""
    if not run.has("steering"):
        return None
    doc = run.steering
    if doc.get("concept") == concept and doc.get("chosen"):
        strength = float(doc["chosen"]["cocomix_add"])
        return Setting("add", strength, f"this run's densest-concept steering results: "
                                        f"add {strength:g} std, chosen by its sweep")
    for row in doc.get("screen", []):
        if row.get("concept") == concept and row.get("clear"):
            strength = float(doc["settings"]["strength"])
            return Setting("add", strength, f"this run's steering screen: add {strength:g} "
                                            "std moved it clear of both controls")
    return None


def _bench(run: Any, concept: int) -> Setting | None:
    """The run's steer-bench (`Run.steer_bench`): for a concept that is a topic's best
    concept, the strength its best single-concept edit at all positions was run at."""
    if not run.has("steer_bench"):
        return None
    doc = run.steer_bench
    topics = [t for t, tc in doc.get("topic_concepts", {}).items()
              if tc["concepts"] and tc["concepts"][0] == concept]
    rows = {k: r for k, r in doc.get("rows", {}).items()
            if k.startswith("cocomix/") and k.endswith("/single/all")}
    if not topics or not rows:
        return None
    key = max(rows, key=lambda k: rows[k]["summary"]["harmonic"]["mean"] or 0.0)
    op = key.split("/")[1]
    strength = doc["selection"][topics[0]][key]["strength"]
    hm = rows[key]["summary"]["harmonic"]["mean"]
    return Setting(op, float("nan") if strength is None else float(strength),
                   f"this run's steer-bench: concept {concept} is topic {topics[0]}'s best "
                   f"concept; {op} (the best single-concept op, harmonic mean {hm:.3f} on "
                   "the report half) at the strength chosen on the selection half")


SOURCES: list[Callable[[Any, int], Setting | None]] = [_bench, _screen]
"""Readers of measured results, asked in order (module docstring)."""


def best_setting(run: Any, concept: int) -> Setting:
    """The first measured setting a `SOURCES` reader has for `concept`, else the default op's
    registry default (labelled as such)."""
    for source in SOURCES:
        found = source(run, concept)
        if found is not None:
            return found
    op = OPS[DEFAULT_OP]
    return Setting(DEFAULT_OP, float(op.default),
                   f"no measurement for this concept on this run: the {DEFAULT_OP} op's "
                   f"default ({op.source})")
