"""Steering toward a topic by name (cocomix_lens/steering/toward.py)."""

import json
from pathlib import Path

import pytest
from test_topic_concepts import fake_run

from cocomix_lens.steering.toward import (
    KEEP_GRAMMAR,
    KEEP_GRAMMAR_SOURCE,
    RECOMMENDED,
    TopicRecipe,
    topic_spec,
    toward,
)


def world_run(catalogue: bool = True):
    """The fake world run, with a catalogue of logit stds (0.1 x concept id) if asked."""
    from types import SimpleNamespace

    run = fake_run()
    run.has = lambda piece: piece == "groundtruth" or (catalogue and piece == "catalogue")
    run.catalogue = SimpleNamespace(concepts={"logit_std": [0.1 * c for c in range(10)]})
    return run


def test_a_topic_name_steers_its_concept_set_with_the_recipe():
    run = world_run()
    spec, how = toward(run, "sea", TopicRecipe("add", "set", "all", 5.0, "test"))
    # stds resolved from the catalogue, so the spec steers the same without the run
    assert [(e.op, e.concept, e.value, e.std) for e in spec.edits] == [
        ("add", 7, 5.0, pytest.approx(0.7)), ("add", 9, 5.0, pytest.approx(0.9)),
        ("add", 5, 5.0, pytest.approx(0.5))]
    assert "topic 'sea'" in how and "test" in how
    single, _ = toward(run, "sea", TopicRecipe("vector", "single", "generated", 2.0, ""))
    assert [(e.op, e.concept, e.positions) for e in single.edits] == [("vector", 7, "generated")]
    assert RECOMMENDED.source


def test_topic_spec_spells_each_op():
    assert topic_spec([3, 4], "set", 8.0).edits[0].weights == (8.0, 8.0)
    assert [e.value for e in topic_spec([3, 4], "force", None).edits] == [None, None]
    with pytest.raises(ValueError, match="no concepts"):
        topic_spec([], "add", 1.0)


def test_an_unknown_name_without_a_catalogue_is_refused_naming_the_topics():
    with pytest.raises(ValueError, match="sea, war"):
        toward(world_run(catalogue=False), "violin")


def test_set_plus_ban_bans_every_other_topics_concepts():
    spec, how = toward(world_run(), "war", TopicRecipe("add", "set+ban", "all", 4.0, ""))
    assert [(e.op, e.concept) for e in spec.edits] == [("add", 3), ("ban", 7), ("ban", 9),
                                                       ("ban", 5)]
    assert "3 other topics' concepts banned" in how


def test_a_runs_bench_gives_the_topics_own_strength():
    run = world_run()
    run.has = lambda piece: piece in ("groundtruth", "catalogue", "steer_bench")
    run.steer_bench = {"per_topic_strength": {"sea": {"cocomix/add/set/all": 3.5}}}
    spec, how = toward(run, "sea", TopicRecipe("add", "set", "all", 5.0, "test"))
    assert [e.value for e in spec.edits] == [3.5, 3.5, 3.5] and "chosen for sea" in how
    other, _ = toward(run, "war", TopicRecipe("add", "set", "all", 5.0, "test"))
    assert [e.value for e in other.edits] == [5.0]


def test_a_runs_bench_that_measured_one_strength_better_gives_that_strength_everywhere():
    run = world_run()
    run.has = lambda piece: piece in ("groundtruth", "catalogue", "steer_bench")
    key = "cocomix/add/set/all"
    run.steer_bench = {"per_topic_strength": {"sea": {key: 3.5}},
                       "selection": {"sea": {key: {"strength": 6.0}}},
                       "recommended": {"variant": key, "per_topic": False}}
    recipe = TopicRecipe("add", "set", "all", 5.0, "test", topic_strengths=(("sea", 2.5),))
    spec, how = toward(run, "sea", recipe)
    assert [e.value for e in spec.edits] == [6.0, 6.0, 6.0] and "one strength" in how
    other, _ = toward(run, "war", recipe)  # not measured there: the recipe's own strength
    assert [e.value for e in other.edits] == [5.0]


def test_without_a_bench_of_its_own_a_topic_gets_the_recipes_per_topic_strength():
    recipe = TopicRecipe("add", "set", "all", 5.0, "test", topic_strengths=(("sea", 2.5),))
    spec, how = toward(world_run(), "sea", recipe)
    assert [e.value for e in spec.edits] == [2.5, 2.5, 2.5] and "chosen for sea" in how
    other, _ = toward(world_run(), "war", recipe)
    assert [e.value for e in other.edits] == [5.0]


def test_the_recommended_recipe_is_the_committed_benchs_best_at_its_measured_strengths():
    """RECOMMENDED is the committed bench's best CoCoMix variant, at one strength or at
    per-topic strengths as the bench's selection half decided, quoting its report figure."""
    results = json.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "results"
                          / "steer_bench_world" / "results.json").read_text())
    rec = results["recommended"]
    assert RECOMMENDED.key == results["best"]["cocomix"] == rec["variant"]
    first = results["topics"][0]
    assert RECOMMENDED.strength == results["selection"][first][RECOMMENDED.key]["strength"]
    sel = rec["selection_hm"]
    assert rec["per_topic"] == (sel["per_topic"] > sel["one_strength"])
    row = RECOMMENDED.key + "@topic" if rec["per_topic"] else RECOMMENDED.key
    assert f"{results['rows'][row]['summary']['harmonic']['mean']:.3f}" in RECOMMENDED.source
    if rec["per_topic"]:
        assert dict(RECOMMENDED.topic_strengths) == {
            t: s[RECOMMENDED.key] for t, s in results["per_topic_strength"].items()}
    else:
        assert RECOMMENDED.topic_strengths == ()


def test_a_recipe_at_sentence_positions_carries_its_span_into_the_spec_and_its_row():
    recipe = TopicRecipe("vector", "set", "new_sentences", 4.0, "test", span=4)
    assert recipe.key == "cocomix/vector/set/new_sentences:4"
    spec = recipe.spec(world_run(), [3], ban=[5])
    assert [(e.op, e.positions, e.span) for e in spec.edits] == [
        ("vector", "new_sentences", 4), ("ban", "new_sentences", 4)]


def _committed_bench() -> dict:
    return json.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "results"
                       / "steer_bench_world" / "results.json").read_text())


def test_keep_grammar_recipes_are_the_committed_benchs_fluent_choices():
    results = _committed_bench()
    assert KEEP_GRAMMAR == {t: (c["recipe"], c["strength"])
                            for t, c in results["fluent"].items()}
    g, row = results["goals_fluent"], results["rows"]["cocomix/fluent"]["summary"]
    assert f"{g['passed']} of {g['of']} topics" in KEEP_GRAMMAR_SOURCE
    assert f"harmonic mean {row['harmonic']['mean']:.3f}" in KEEP_GRAMMAR_SOURCE


def test_keep_grammar_steers_a_topic_with_its_measured_edit(monkeypatch):
    run = world_run()
    op, strength = KEEP_GRAMMAR["sea"][0].split("/")[0], KEEP_GRAMMAR["sea"][1]
    spec, how = toward(run, "sea", keep_grammar=True)
    assert {e.op for e in spec.edits} - {"ban"} == {op} and KEEP_GRAMMAR_SOURCE in how
    assert {e.concept for e in spec.edits if e.op == op} <= {7, 9, 5}
    if strength is not None:
        assert {e.value for e in spec.edits if e.op == op} == {strength}
    # the run's own bench decides first
    run.has = lambda piece: piece in ("groundtruth", "catalogue", "steer_bench")
    run.steer_bench = {"fluent": {"sea": {"recipe": "vector/single/new_sentences:2",
                                          "strength": 2.0}}}
    spec, how = toward(run, "sea", keep_grammar=True)
    assert [(e.op, e.concept, e.value, e.positions, e.span) for e in spec.edits] == [
        ("vector", 7, 2.0, "new_sentences", 2)] and "this run's steer-bench" in how
    assert "vector 2.0 at positions new_sentences:2" in how  # where the edit acts, in words
    # neither measured the topic: one line naming the command that does
    monkeypatch.delitem(KEEP_GRAMMAR, "war")
    with pytest.raises(ValueError, match=r"topic 'war' .*fix: measure it with"):
        toward(run, "war", keep_grammar=True)
    with pytest.raises(ValueError, match=r"needs a topic .*\(sea, war\), not 'violin'"):
        toward(run, "violin", keep_grammar=True)
