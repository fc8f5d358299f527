"""A world topic's concepts, read from the run's ground truth (`Run.groundtruth`).

    tc = topic_concepts(run, "farming")      # TopicConcepts
    tc.best, tc.concepts, tc.f1, tc.how      # 506, (506, 77, ...), (0.81, 0.64, ...), "..."

One answer per (run, topic, source): the concept whose firing matches the topic's sentences
best (sentence-level F1 of the groundtruth stage), then every other concept whose best match
over all latent variables is this topic (token or sentence level, F1 >= `min_f1`), ranked by
F1. `source` says whose concepts: "student" (the concepts the CoCoMix student predicts: what a
steering edit moves), "sae" (the teacher SAE's latents: what SAE steering adds) or "labels".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cocomix_lens.groundtruth import concept_matches_of
from cocomix_lens.remedy import Remedy, attach

SOURCES = ("student", "sae", "labels")
DEFAULT_SOURCE = "student"
MATCH_FLOOR = 0.5  # groundtruth.json lists a concept's best match only from this F1 on


@dataclass(frozen=True)
class TopicConcepts:
    """A topic's concepts, best first, with the F1 that ranks them and how they were chosen."""

    topic: str
    concepts: tuple[int, ...]
    f1: tuple[float, ...]
    source: str
    how: str

    @property
    def best(self) -> int:
        return self.concepts[0]

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "concepts": list(self.concepts), "f1": list(self.f1),
                "source": self.source, "how": self.how}


def world_topics(run: Any) -> list[str]:
    """The topics the run's ground truth knows (sorted)."""
    values = _summary(run, DEFAULT_SOURCE, sentence=True)["variables"]["topic"]["values"]
    return sorted(values)


def topic_concepts(run: Any, topic: str, source: str = DEFAULT_SOURCE,
                   min_f1: float = MATCH_FLOOR, max_concepts: int = 8) -> TopicConcepts:
    """`topic`'s concepts in `source`, ranked by ground-truth F1 (see the module docstring)."""
    if source not in SOURCES:
        raise ValueError(f"source={source!r}; choose one of {SOURCES}")
    sentences = _summary(run, source, sentence=True)
    values = sentences["variables"]["topic"]["values"]
    if topic not in values:
        raise ValueError(f"topic {topic!r} is not in the run's ground truth; choose one of "
                         f"{', '.join(sorted(values))}")
    best = int(values[topic]["concept"])
    matches = concept_matches_of(_summary(run, source, sentence=False), sentences, min_f1)
    ranked = sorted(((c, f) for c, (name, f) in matches.items()
                     if name == f"topic={topic}" and c != best), key=lambda cf: -cf[1])
    chosen = [(best, float(values[topic]["f1"]))] + ranked[:max_concepts - 1]
    how = (f"{source} concepts: the best sentence-level topic={topic} match (F1 "
           f"{chosen[0][1]:.2f}), then {len(chosen) - 1} more whose best match over all "
           f"latent variables is topic={topic} with F1 >= {min_f1:g} (groundtruth.json)")
    return TopicConcepts(topic, tuple(c for c, _ in chosen),
                         tuple(round(f, 4) for _, f in chosen), source, how)


def _summary(run: Any, source: str, sentence: bool) -> dict[str, Any]:
    gt = run.groundtruth
    key = "sentence_sources" if sentence else "sources"
    if source not in gt.get(key, {}):
        rerun = Remedy("pipeline", {"out": run.path},
                       verb="delete groundtruth.json and its stage marker, then re-run")
        raise attach(ValueError(f"the run's groundtruth.json has no {key}[{source!r}]; fix: "
                                f"{rerun}"), rerun)
    return gt[key][source]
