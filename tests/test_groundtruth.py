"""Concept recovery metrics (cocomix_lens/groundtruth.py) on planted latents."""

import numpy as np
import pytest

from cocomix_lens.groundtruth import MatchTable, Recovery, best_match_from_summary


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
