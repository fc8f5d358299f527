"""A topic's concepts from the run's ground truth (cocomix_lens/steering/topics.py)."""

from types import SimpleNamespace

import pytest

from cocomix_lens.steering.topics import topic_concepts, world_topics


def summary(values: dict, concepts: dict) -> dict:
    return {"threshold": 0.8, "concepts": concepts,
            "variables": {"topic": {"values": values}}}


def fake_run() -> SimpleNamespace:
    sentence = summary({"sea": {"concept": 7, "f1": 0.7}, "war": {"concept": 3, "f1": 0.6}},
                       {"7": {"variable": "topic", "value": "sea", "f1": 0.7},
                        "9": {"variable": "topic", "value": "sea", "f1": 0.65},
                        "4": {"variable": "act", "value": "statement", "f1": 0.9}})
    token = summary({"sea": {"concept": 5, "f1": 0.4}},
                    {"5": {"variable": "topic", "value": "sea", "f1": 0.55},
                     "9": {"variable": "topic", "value": "sea", "f1": 0.5},
                     "2": {"variable": "topic", "value": "sea", "f1": 0.3}})
    gt = {"sources": {"student": token}, "sentence_sources": {"student": sentence}}
    return SimpleNamespace(groundtruth=gt, path="runs/x")


def test_best_sentence_match_first_then_others_whose_best_match_is_the_topic():
    tc = topic_concepts(fake_run(), "sea")
    assert tc.concepts == (7, 9, 5) and tc.f1 == (0.7, 0.65, 0.55) and tc.best == 7
    assert tc.source == "student" and "F1 >= 0.5" in tc.how
    assert topic_concepts(fake_run(), "sea", max_concepts=2).concepts == (7, 9)
    assert topic_concepts(fake_run(), "sea", min_f1=0.6).concepts == (7, 9)
    assert topic_concepts(fake_run(), "war").concepts == (3,)
    assert world_topics(fake_run()) == ["sea", "war"]


def test_unknown_topic_or_source_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="sea, war"):
        topic_concepts(fake_run(), "space")
    with pytest.raises(ValueError, match="source="):
        topic_concepts(fake_run(), "sea", source="teacher")
    with pytest.raises(ValueError, match="groundtruth.json and its stage marker"):
        topic_concepts(fake_run(), "sea", source="sae")
