"""Steer toward a topic or a concept by name, with the setting the steering benchmark
measured best (`cocomix-lens steer-bench`).

    spec, how = toward(run, "farming")       # a world topic: its concept set (topics.py)
    spec, how = toward(run, "violin")        # else: the catalogue's best match for the name
    run.student.generate("Anna was a nurse.", 30, steering=spec)

`TopicRecipe` is one CoCoMix edit of a topic: which op, on the topic's best concept or its
concept set, at which positions, how strong. `RECOMMENDED` is the recipe with the best
harmonic mean on the benchmark's selection half, labelled with the run and command it comes
from, at one strength for every topic or at the strength the benchmark chose for each topic,
whichever the benchmark's selection half measured better (its `recommended` entry); the
benchmark builds every CoCoMix method it measures through `topic_spec`, so what it measured
is what `toward` gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from cocomix_lens.remedy import Remedy, attach
from cocomix_lens.steering.spec import Edit, SteeringSpec, parse_position_label, position_label
from cocomix_lens.steering.topics import topic_concepts, world_topics

CONCEPT_SETS = ("single", "set", "set+ban")
"""Which concepts a topic recipe edits: the topic's best concept, its concept set, or its set
while every other topic's concept set is banned from the top-k."""


def topic_spec(concepts: Sequence[int], op: str, strength: float | None,
               positions: str = "all", ban: Sequence[int] = (),
               span: int | None = None) -> SteeringSpec:
    """One `op` edit of each concept (set: one edit keeping all of them, each with weight
    `strength`; force: no strength), and a ban of each of `ban` (other concepts), all at
    `positions` (`span`: slots of each sentence, for sentence positions)."""
    ids = tuple(int(c) for c in concepts)
    if not ids:
        raise ValueError("no concepts to steer; fix: pass at least one concept id")
    if op == "set":
        edits = (Edit("set", positions=positions, concepts=ids,
                      weights=tuple(float(strength) for _ in ids), span=span),)
    elif op in ("force", "ban"):
        edits = tuple(Edit(op, c, positions=positions, span=span) for c in ids)
    else:
        edits = tuple(Edit(op, c, float(strength), positions, span=span) for c in ids)
    banned = tuple(Edit("ban", int(c), positions=positions, span=span)
                   for c in ban if int(c) not in ids)
    return SteeringSpec(edits + banned)



@dataclass(frozen=True)
class TopicRecipe:
    """One CoCoMix edit of a topic's concepts, and where the choice comes from."""

    op: str
    concepts: str  # CONCEPT_SETS
    positions: str
    strength: float | None
    source: str
    topic_strengths: tuple[tuple[str, float], ...] = ()
    """(topic, strength) chosen per topic on the selection half of the steer-bench `source`
    names (grammar within 10 points of unsteered): the strength for a world topic on a run
    without a steer-bench of its own."""
    span: int | None = None
    """positions "new_tokens": the slots edited from the prompt's last token on; sentence
    positions ("sentences", "new_sentences"): the slots of each sentence edited."""

    def __post_init__(self) -> None:
        if self.concepts not in CONCEPT_SETS:
            raise ValueError(f"concepts={self.concepts!r}; choose one of {CONCEPT_SETS}")

    @property
    def key(self) -> str:
        """The steer-bench row of this recipe, e.g. "cocomix/add/set+ban/all"."""
        return f"cocomix/{self.op}/{self.concepts}/{position_label(self.positions, self.span)}"

    def for_topic(self, run: Any, topic: str) -> TopicRecipe:
        """This recipe at the strength chosen for `topic` on a steer-bench's selection half
        (grammar within 10 points of unsteered): the run's own bench when it has one and
        recommends per-topic strengths, else `topic_strengths`; the recipe's one strength
        when neither measured the topic or the run's bench measured one strength better."""
        bench = run.steer_bench if run.has("steer_bench") else {}
        if not bench.get("recommended", {}).get("per_topic", True):
            one = bench.get("selection", {}).get(topic, {}).get(self.key)
            return self if one is None else replace(self, strength=one["strength"], source=(
                f"this run's steer-bench: {self.key} at the one strength chosen for every "
                "topic on its selection half (better there than per-topic strengths)"))
        chosen = bench.get("per_topic_strength", {}).get(topic, {})
        if self.key in chosen:
            return replace(self, strength=chosen[self.key], source=(
                f"this run's steer-bench: {self.key} at the strength chosen for {topic} on "
                "its selection half (grammar within 10 points of unsteered)"))
        measured = dict(self.topic_strengths)
        if topic not in measured:
            return self
        return replace(self, strength=measured[topic], source=(
            f"{self.source}; at the strength chosen for {topic} on the selection half"))

    def ids(self, run: Any, topic: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(the concepts to raise, the concepts to ban) for `topic`."""
        tc = topic_concepts(run, topic)
        if self.concepts == "single":
            return tc.concepts[:1], ()
        if self.concepts == "set":
            return tc.concepts, ()
        others = [c for t in world_topics(run) if t != topic
                  for c in topic_concepts(run, t).concepts]
        return tc.concepts, tuple(dict.fromkeys(others))

    def spec(self, run: Any, concepts: Sequence[int], ban: Sequence[int] = ()) -> SteeringSpec:
        """The edit of `concepts` (and the ban of `ban`), stds resolved from the catalogue."""
        return topic_spec(concepts, self.op, self.strength, self.positions,
                          ban, self.span).resolve(run)


RECOMMENDED = TopicRecipe(
    "vector", "set+ban", "new_tokens", 16.0, span=8,
    source="steer-bench on the demo run: the CoCoMix recipe with the best harmonic mean on "
           "the selection half, 0.215 [0.194, 0.236] on the report half at one strength "
           "for every topic, on the first 8 new tokens, then released (per-topic strengths "
           "holding grammar within 10 points of unsteered: 0.125, and worse on the selection "
           "half too; DiffMean on the same tokens: 0.235 [0.215, 0.255]) "
           "(benchmarks/results/steer_bench_world: the steer-bench step on runs/demo)")
"""The best CoCoMix recipe on the steering benchmark's report half (see `source`)."""


KEEP_GRAMMAR: dict[str, tuple[str, float | None]] = {
    "art": ("add/set+ban/all", 3.0),
    "cooking": ("add/set+ban/new_tokens:8", 12.0),
    "farming": ("add/set+ban/new_tokens:8", 6.0),
    "forest": ("add/set+ban/all", 4.5),
    "medicine": ("vector/set+ban/new_tokens:4", 8.0),
    "music": ("add/set+ban/new_tokens:8", 8.0),
    "school": ("vector/set/new_tokens:4", 8.0),
    "sea": ("add/set+ban/new_tokens:8", 10.0),
    "space": ("add/set+ban/new_tokens:8", 8.0),
    "sport": ("vector/set+ban/new_tokens:8", 4.0),
    "trade": ("add/set+ban/new_tokens:8", 12.0),
    "travel": ("add/set+ban/new_tokens:4", 6.0),
    "war": ("vector/set+ban/new_tokens:4", 16.0),
    "weather": ("add/set+ban/new_tokens:8", 12.0),
}
"""topic -> (steer-bench variant "op/concepts/positions", strength): per topic, the CoCoMix edit
with the best selection-half harmonic mean among those that kept grammar within 10 points of
unsteered (the steer-bench's `fluent` choice on the demo run, `KEEP_GRAMMAR_SOURCE`)."""
KEEP_GRAMMAR_SOURCE = (
    "steer-bench on the demo run: the CoCoMix edit chosen for this topic that kept grammar "
    "within 10 points of unsteered on the selection half (the cocomix/fluent row: "
    "14 of 14 topics pass the 5x on-topic goal on the report half, harmonic "
    "mean 0.134; benchmarks/results/steer_bench_world)")


def keep_grammar_recipe(run: Any, topic: str) -> TopicRecipe:
    """The recipe `toward(..., keep_grammar=True)` uses for `topic`: the run's own
    steer-bench `fluent` choice when it has one, else `KEEP_GRAMMAR`'s (the demo run's)."""
    bench = run.steer_bench if run.has("steer_bench") else {}
    mine = bench.get("fluent", {}).get(topic)
    if mine is not None:
        variant, strength = mine["recipe"], mine["strength"]
        source = ("this run's steer-bench: the CoCoMix edit chosen for this topic that kept "
                  "grammar within 10 points of unsteered on its selection half")
    elif topic in KEEP_GRAMMAR:
        (variant, strength), source = KEEP_GRAMMAR[topic], KEEP_GRAMMAR_SOURCE
    else:
        bench_it = Remedy("steer-bench", {"run": run.path}, verb="measure it with")
        raise attach(ValueError(f"no edit of topic {topic!r} was measured to keep grammar; "
                                f"fix: {bench_it}"), bench_it)
    op, concepts, positions = variant.split("/", 2)
    where, span = parse_position_label(positions)
    return TopicRecipe(op, concepts, where, strength, source, span=span)


def toward(run: Any, name: str, recipe: TopicRecipe = RECOMMENDED,
           keep_grammar: bool = False) -> tuple[SteeringSpec, str]:
    """(spec, one line saying what it steers and why) toward `name`: a topic of the run's
    ground truth (its concepts, `topics.topic_concepts`), else the concept the catalogue's
    search ranks first for `name` (a single concept, the recipe's op and strength).
    `keep_grammar` (topics only): the edit the steering benchmark chose for the topic under
    its grammar bound (`keep_grammar_recipe`) instead of `recipe`, which moves the topic
    more and costs more grammar."""
    name = str(name).strip()
    topics = world_topics(run) if run.has("groundtruth") else []
    if keep_grammar and name not in topics:
        raise ValueError(f"keep_grammar=True needs a topic of the run's ground truth "
                         f"({', '.join(topics) or 'none'}), not {name!r}; fix: pass one of "
                         "them, or drop keep_grammar=True")
    if name in topics:
        recipe = keep_grammar_recipe(run, name) if keep_grammar else recipe.for_topic(run, name)
        ids, ban = recipe.ids(run, name)
        what = f"topic {name!r}: concepts {list(ids)} ({topic_concepts(run, name).how})"
        what += f", {len(ban)} other topics' concepts banned" if ban else ""
    else:
        ids, ban = (_search(run, name, topics),), ()
        what = f"concept {ids[0]}, the catalogue's best match for {name!r}"
    spec = recipe.spec(run, ids, ban)
    where = position_label(recipe.positions, recipe.span)
    where = "" if where == "all" else f" at positions {where}"
    return spec, f"{what}; {recipe.op} {recipe.strength}{where}: {recipe.source}"


def _search(run: Any, name: str, topics: list[str]) -> int:
    from cocomix_lens.catalogue.search import search

    if not run.has("catalogue"):
        build = Remedy("catalog", {"run": run.path}, verb="build the catalogue with")
        raise attach(ValueError(f"{name!r} is not a topic of the run's ground truth "
                                f"({', '.join(topics) or 'none'}) and the run has no catalogue "
                                f"to search; fix: pass a topic, or {build}"), build)
    hits = search(run.catalogue, name, limit=1)
    if hits.empty:
        raise ValueError(f"no concept matches {name!r}; fix: pass a topic "
                         f"({', '.join(topics) or 'none'}) or another word")
    return int(hits.index[0])
