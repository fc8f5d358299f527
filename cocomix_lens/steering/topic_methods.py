"""Steering methods aimed at a topic, as reproducible records: what the steering benchmark
(`cocomix_lens.steering.topic_eval`, `cocomix-lens steer-bench`) measures.

    m = TopicMethod("diffmean", "blocks.1.hook_resid_post", "farming", 4.0,
                    hook="blocks.1.hook_resid_post", vector=tuple(4.0 * v))
    method = m.method()                          # the harness's `method.Method`
    with method.context(run.student, prompt_len):
        run.student.generate(m.prompt(opening), 40)

A TopicMethod carries everything that rebuilds it from its JSON: its family and variant, the
CoCoMix SteeringSpec (concept edits), or the residual direction (already scaled: DiffMean,
the SAE decoder direction, a random direction) and the hook it is added at, or the text put
before / after the opening (prompting). `method()` turns it into the one `Method` every
steering evaluation runs (`spec_method`, `residual_method`, `prompt_method`). `strength` is
the grid value it was built with, in the unit its family states (`FAMILIES`).

The families here need nothing but the opening's text. A corpus whose grammar writes prompts
of its own registers those families with `register_family` when its module is imported (the
world's topic cues and switch line: `cocomix_lens/world/steer_topics.py`), as a corpus's
scorers are registered with `scorers.register_scorer`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from cocomix_lens.steering.method import Method, prompt_method, residual_method
from cocomix_lens.steering.spec import SteeringSpec


class TextPrompt(Protocol):
    """What a topic method continues: a held-out document's opening, of which the families
    here read only the text (a corpus's families may read more, e.g. the world's tense)."""

    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class Family:
    """A kind of steering method and the unit its strength is in."""

    name: str
    model: str  # the run role that generates: "student" or "teacher"
    unit: str
    doc: str
    # the text the model continues, (method, opening) -> str; None: the opening as it is.
    # (Any: a corpus's family reads its own opening type, e.g. the world's `Opening`.)
    prompt: Callable[[TopicMethod, Any], str] | None = None
    world: bool = False  # built from the world's grammar (its cue lines): world runs only


def _context(m: TopicMethod, opening: TextPrompt) -> str:
    return f"{m.cue} {opening.text}" if m.variant == "before" else f"{opening.text} {m.cue}"


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("cocomix", "student", "the op's own unit (add: logit stds; scale: factor; set: "
           "logit weight; vector: x compressor row; force: none)",
           "CoCoMix concept edits (a SteeringSpec) of the topic's concept(s)"),
    Family("diffmean", "student", "x (mean over topic tokens - mean over other tokens)",
           "DiffMean: the topic's difference of mean residuals added at a hook"),
    Family("diffmean_vector", "student", "x (mean c_t over topic tokens - over others)",
           "DiffMean in concept-vector space: a `vector` edit of c_t"),
    Family("sae", "teacher", "x mean residual norm at the SAE's hook",
           "classic SAE steering: the topic's SAE latent's unit decoder direction added to "
           "the teacher's residual stream"),
    Family("prompt_context", "student", "none",
           "a text the target concept is most active on (the catalogue's top teacher context) "
           "put before (variant before) or after (after) the opening: runs without a world",
           _context),
    Family("unsteered", "student", "none", "no edit"),
    Family("random_concept", "student", "as the CoCoMix method it controls",
           "the chosen CoCoMix edit moved to random live concepts"),
    Family("random_direction", "student", "as the DiffMean method it controls",
           "a random direction with the norm of the chosen DiffMean vector, at its hook"),
)}
"""name -> Family: the families above and those a corpus registers (`register_family`)."""


def register_family(family: Family) -> Family:
    """Add (or replace) a steering family in `FAMILIES`; returns it."""
    FAMILIES[family.name] = family
    return family


@dataclass(frozen=True)
class TopicMethod:
    """One steering method at one strength, for one target topic (module docstring)."""

    family: str
    variant: str  # what distinguishes methods of a family, e.g. "add/set/all"
    topic: str
    strength: float | None = None
    spec: SteeringSpec | None = None
    hook: str | None = None
    vector: tuple[float, ...] | None = None
    seed: int = 0  # of the prompting cue's word choice
    cue: str = ""  # prompt_context: the text put before or after the opening
    positions: str = "all"  # a residual direction: where it is added (method.residual_method)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # what it was made from

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown steering family {self.family!r}; choose one of "
                             f"{', '.join(FAMILIES)} (a corpus's own families are registered "
                             "by importing its module, e.g. cocomix_lens.world.steer_topics)")
        if (self.hook is None) != (self.vector is None):
            raise ValueError("a residual direction needs both hook and vector")

    @property
    def model(self) -> str:
        return FAMILIES[self.family].model

    @property
    def key(self) -> str:
        """'family/variant' (the row of a benchmark table)."""
        return f"{self.family}/{self.variant}" if self.variant else self.family

    def prompt(self, opening: TextPrompt) -> str:
        """The text the model continues: the opening, with a cue when the method prompts
        (its family's `prompt`)."""
        text = FAMILIES[self.family].prompt
        return opening.text if text is None else text(self, opening)

    def method(self) -> Method:
        """The harness's Method: the spec's hooks, the residual direction at its hook, or no
        hooks (prompting and unsteered: `prompt` gives their text)."""
        desc = f"{self.key} toward {self.topic}" + (
            "" if self.strength is None else f" at {self.strength:g}")
        if self.spec is not None and self.spec.edits:
            return Method(desc, self.model, lambda m, n: self.spec.context(m, n), None,
                          {"spec": self.spec.to_dict()}, strength=_nan(self.strength))
        if self.vector is not None:
            return residual_method(self.hook, self.vector, desc, self.model,
                                   positions=self.positions)
        return prompt_method(lambda text: text, desc, model=self.model)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "variant": self.variant, "topic": self.topic,
                "strength": self.strength, "unit": FAMILIES[self.family].unit,
                "model": self.model,
                "spec": None if self.spec is None else self.spec.to_dict(),
                "hook": self.hook, "vector": None if self.vector is None else list(self.vector),
                "seed": self.seed, "extra": self.extra,
                **({"cue": self.cue} if self.cue else {}),  # (world cells keep their keys)
                **({"positions": self.positions} if self.positions != "all" else {})}

    @classmethod
    def from_dict(cls, blob: dict[str, Any]) -> TopicMethod:
        spec = blob.get("spec")
        vector = blob.get("vector")
        return cls(blob["family"], blob["variant"], blob["topic"], blob.get("strength"),
                   None if spec is None else SteeringSpec.from_dict(spec), blob.get("hook"),
                   None if vector is None else tuple(vector), blob.get("seed", 0),
                   blob.get("cue", ""), blob.get("positions", "all"),
                   dict(blob.get("extra") or {}))


def _nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)
