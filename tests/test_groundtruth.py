"""Concept recovery metrics (cocomix_lens/groundtruth.py) on planted latents."""

import numpy as np
import pytest

from cocomix_lens.groundtruth import (
    MatchTable,
    Recovery,
    best_match_from_summary,
    concept_matches_of,
    concept_names_of,
    pool_units,
    unit_ids,
)


def _world(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, 4, n)  # every token has one of 4 topics
    char = np.where(rng.random(n) < 0.2, rng.integers(0, 3, n), -1)  # 20 % are mentions
    active = rng.integers(10, 50, (n, 3))  # background concepts 10..49
    active[:, 0] = np.where(topic == 2, 5, active[:, 0])  # concept 5 == "topic is 2"
    active[:, 1] = np.where(char == 1, 7, active[:, 1])  # concept 7 == "character 1"
    return active, {"topic": (topic, ["a", "b", "c", "d"]), "character": (char, ["x", "y", "z"])}


def test_planted_latent_scores_f1_one_and_unrelated_latent_scores_low():
    active, truth = _world()
    rec = Recovery.from_active(active, truth, n_concepts=50)
    assert rec.f1["topic"][5, 2] == pytest.approx(1.0)
    assert rec.f1["character"][7, 1] == pytest.approx(1.0)
    assert rec.best_match(5) == ("topic", "c", pytest.approx(1.0))
    assert rec.best_match(7) == ("character", "y", pytest.approx(1.0))
    # A random concept fires on ~3/40 of tokens: its F1 with any value stays small.
    assert rec.best_match(30)[2] < 0.2
    assert rec.coverage() == {"topic": 0.25, "character": pytest.approx(1 / 3)}
    assert rec.names() == {5: "topic=c", 7: "character=y"}


def test_f1_matches_a_direct_count():
    active, truth = _world(n=500, seed=1)
    col = truth["topic"][0]
    table = MatchTable.count(active, col, 50, 4)
    c, v = 23, 1
    fires = (active == c).any(1)
    holds = col == v
    assert table.f1()[c, v] == pytest.approx(2 * (fires & holds).sum()
                                            / (fires.sum() + holds.sum()))


def test_repeated_concept_on_a_token_counts_once_and_padding_is_ignored():
    active = np.array([[3, 3, -1], [3, -1, -1], [1, 2, 3]])
    t = MatchTable.count(active, np.array([0, -1, 0]), 4, 1)
    assert t.fired.tolist() == [0, 1, 1, 3] and t.tp[:, 0].tolist() == [0, 1, 1, 2]
    assert t.f1()[3, 0] == pytest.approx(2 * 2 / (3 + 2))


def test_summary_reads_back_best_matches():
    active, truth = _world()
    s = Recovery.from_active(active, truth, 50).summary()
    assert s["variables"]["topic"]["values"]["c"] == {"concept": 5, "f1": 1.0}
    assert best_match_from_summary(s, 7) == ("character", "y", 1.0)
    assert best_match_from_summary(s, 30) == ("", "", 0.0)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\[N, k\]"):
        MatchTable.count(np.zeros(5, dtype=int), np.zeros(5, dtype=int), 2, 2)


def _sentences(n_sent=300, seed=2):
    """Sentences of 3..8 tokens with one topic each; concept 4 fires on one token of every
    topic-1 sentence only, background concepts 10..49 fire anywhere."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 9, n_sent)
    units = np.repeat(np.arange(n_sent), lengths)
    topic_of = rng.integers(0, 3, n_sent)
    topic = topic_of[units]
    active = rng.integers(10, 50, (len(units), 2))
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    marked = first[topic_of == 1] + 1  # the second token of each topic-1 sentence
    active[marked, 0] = 4
    return active, units, topic, topic_of


def test_pooled_sentence_latent_scores_one_where_token_f1_cannot():
    active, units, topic, _ = _sentences()
    truth = {"topic": (topic, ["a", "b", "c"])}
    token = Recovery.from_active(active, truth, 50)
    assert token.f1["topic"][4, 1] < 0.4  # one token of ~5.5 per sentence
    sentence = Recovery.from_active(*pool_units(active, units, truth), 50)
    assert sentence.f1["topic"][4, 1] == pytest.approx(1.0)
    assert sentence.best_match(4) == ("topic", "b", pytest.approx(1.0))


def test_pooled_counts_match_a_direct_sentence_count():
    active, units, topic, topic_of = _sentences(n_sent=120, seed=3)
    pooled, truth = pool_units(active, units, {"topic": (topic, ["a", "b", "c"])})
    assert truth["topic"][0].tolist() == topic_of.tolist()
    c, v = 17, 2
    fires = np.array([(active[units == u] == c).any() for u in range(len(topic_of))])
    holds = topic_of == v
    f1 = MatchTable.count(pooled, truth["topic"][0], 50, 3).f1()[c, v]
    assert f1 == pytest.approx(2 * (fires & holds).sum() / (fires.sum() + holds.sum()))


def test_unit_ids_start_a_new_unit_after_each_end_and_bad_units_are_refused():
    ends = np.array([False, True, False, False, True, True, False])
    assert unit_ids(ends).tolist() == [0, 0, 1, 1, 1, 2, 3]
    with pytest.raises(ValueError, match="non-decreasing"):
        pool_units(np.zeros((3, 1), dtype=int), np.array([0, 2, 1]), {})


def test_concept_names_take_the_better_of_token_and_sentence_matches():
    tokens = {"concepts": {"3": {"variable": "topic", "value": "sea", "f1": 0.6},
                           "5": {"variable": "place", "value": "Dalby", "f1": 0.9}}}
    sentences = {"concepts": {"3": {"variable": "topic", "value": "sea", "f1": 0.85},
                              "5": {"variable": "tense", "value": "past", "f1": 0.82}}}
    assert concept_matches_of(tokens, sentences) == {3: ("topic=sea", 0.85),
                                                     5: ("place=Dalby", 0.9)}
    assert concept_names_of(tokens) == {5: "place=Dalby"}


def test_a_concept_firing_everywhere_does_not_match_the_majority_value():
    n = 1000
    value = (np.arange(n) % 10 < 7).astype(int)  # value 1 holds on 70 % of rows
    active = np.stack([np.full(n, 2), np.where(value == 1, 3, -1)], 1)
    table = MatchTable.count(active, value, 4, 2)
    assert table.f1()[2, 1] == pytest.approx(2 * 0.7 / 1.7)  # 0.82: "always on"
    rec = Recovery.from_active(active, {"act": (value, ["other", "statement"])}, 4)
    assert rec.f1["act"][2, 1] == 0.0 and rec.f1["act"][3, 1] == pytest.approx(1.0)
    assert rec.names() == {3: "act=statement"}
