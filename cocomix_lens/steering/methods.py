"""Steering methods: anything that edits a generation toward a topic, in one form the
benchmark's harness runs (`cocomix_lens.steering.topic_eval`).

    m = Method("diffmean", "student", 4.0, hook="blocks.1.hook_resid_post", vector=v)
    with m.context(run.student):                 # edits inside the block only
        run.student.generate(m.prompt(opening), 40)

A Method carries everything that makes it reproducible from its JSON: which model generates,
the CoCoMix SteeringSpec (concept edits), or the residual direction and hook it adds (already
scaled: DiffMean, the SAE decoder direction, a random direction), or the text put before /
after the opening (prompting). `strength` is the grid value it was built with, in the unit
its family states (`FAMILIES`).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from cocomix_lens.steering.diffmean import add_direction
from cocomix_lens.steering.hooks import steer
from cocomix_lens.steering.spec import SteeringSpec
from cocomix_lens.world.openings import Opening, cue_before, switch_line


@dataclass(frozen=True)
class Family:
    """A kind of steering method and the unit its strength is in."""

    name: str
    model: str  # the run role that generates: "student" or "teacher"
    unit: str
    doc: str


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
    Family("prompt_cue", "student", "none", "two topic sentences put before the opening"),
    Family("prompt_switch", "student", "none",
           "the corpus's topic-switch line put after the opening"),
    Family("unsteered", "student", "none", "no edit"),
    Family("random_concept", "student", "as the CoCoMix method it controls",
           "the chosen CoCoMix edit moved to random live concepts"),
    Family("random_direction", "student", "as the DiffMean method it controls",
           "a random direction with the norm of the chosen DiffMean vector, at its hook"),
)}


@dataclass(frozen=True)
class Method:
    """One steering method at one strength, for one target topic."""

    family: str
    variant: str  # what distinguishes methods of a family, e.g. "add/set/all"
    topic: str
    strength: float | None = None
    spec: SteeringSpec | None = None
    hook: str | None = None
    vector: tuple[float, ...] | None = None
    seed: int = 0  # of the prompting cue's word choice
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # what it was made from

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown steering family {self.family!r}; choose one of "
                             f"{', '.join(FAMILIES)}")
        if (self.hook is None) != (self.vector is None):
            raise ValueError("a residual direction needs both hook and vector")

    @property
    def model(self) -> str:
        return FAMILIES[self.family].model

    @property
    def key(self) -> str:
        """'family/variant' (the row of a benchmark table)."""
        return f"{self.family}/{self.variant}" if self.variant else self.family

    def prompt(self, opening: Opening) -> str:
        """The text the model continues: the opening, with a cue when the method prompts."""
        if self.family == "prompt_cue":
            return cue_before(self.topic, opening.tense, self.seed) + opening.text
        if self.family == "prompt_switch":
            return opening.text + switch_line(self.topic, opening.tense, self.seed)
        return opening.text

    def context(self, model: Any):
        """The context manager inside which `model` generates with this method's edit."""
        if self.spec is not None and self.spec.edits:
            return steer(model, self.spec)
        if self.vector is not None:
            return add_direction(model, self.hook, self.vector)
        return nullcontext()

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "variant": self.variant, "topic": self.topic,
                "strength": self.strength, "unit": FAMILIES[self.family].unit,
                "model": self.model,
                "spec": None if self.spec is None else self.spec.to_dict(),
                "hook": self.hook, "vector": None if self.vector is None else list(self.vector),
                "seed": self.seed, "extra": self.extra}

    @classmethod
    def from_dict(cls, blob: dict[str, Any]) -> Method:
        spec = blob.get("spec")
        vector = blob.get("vector")
        return cls(blob["family"], blob["variant"], blob["topic"], blob.get("strength"),
                   None if spec is None else SteeringSpec.from_dict(spec), blob.get("hook"),
                   None if vector is None else tuple(vector), blob.get("seed", 0),
                   dict(blob.get("extra") or {}))
