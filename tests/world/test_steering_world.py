"""World oracle scorers of measured steering: which runs they apply to, the target they check
and per-sample shares of sentences on target / grammatical."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cocomix_lens.steering.scorers import SCORERS, Generations, Readings, scorers_for
from cocomix_lens.world import grammatical_share
from cocomix_lens.world.steering_scorers import is_world_run, world_target

TEXTS = [" Anna baked a pie. The chef stirred the soup. Ben sailed a boat.",
         " The ship swam. Anna saw the storm.",
         " Ben rowed the boat to the harbor."]


def _readings(extras):
    n = len(TEXTS)
    gens = Generations(torch.zeros(n, 2, dtype=torch.long), torch.ones(n, dtype=torch.long),
                       torch.ones(n, dtype=torch.long), TEXTS)
    run = SimpleNamespace(shards=SimpleNamespace(manifest={"corpus": {"source": "world"}}))
    return Readings(run, 0, gens, extras)


def test_world_scorers_apply_only_to_world_runs():
    world = SimpleNamespace(shards=SimpleNamespace(manifest={"corpus": {"source": "world"}}))
    wiki = SimpleNamespace(shards=SimpleNamespace(manifest={"corpus": {"source": "wiki"}}))
    assert is_world_run(world) and not is_world_run(wiki)
    assert {"oracle_on_target", "oracle_grammatical"} <= {s.name for s in scorers_for(world)}
    assert not {"oracle_on_target", "oracle_grammatical"} & {s.name for s in scorers_for(wiki)}


def test_on_target_share_is_per_sample_share_of_sentences():
    cooking = SCORERS["oracle_on_target"].fn(_readings({"topic": "cooking"}))
    assert cooking == pytest.approx([2 / 3, 0.0, 0.0])
    sea = SCORERS["oracle_on_target"].fn(_readings({"topic": "sea"}))
    assert sea == pytest.approx([1 / 3, 0.5, 1.0])
    ben = SCORERS["oracle_on_target"].fn(_readings({"character": "Ben"}))
    assert ben == pytest.approx([1 / 3, 0.0, 1.0])


def test_grammatical_share_matches_the_oracle_per_text():
    got = SCORERS["oracle_grammatical"].fn(_readings({}))
    want = np.array([grammatical_share([t]).value for t in TEXTS])
    assert got == pytest.approx(want) and 0 <= got.min() <= got.max() <= 1


def test_world_target_prefers_extras():
    assert world_target(None, 0, {"topic": "sea"}) == ("topic", "sea")
    assert world_target(None, 0, {"character": "Anna"}) == ("character", "Anna")


@pytest.mark.parametrize("extras, message", [({"topic": "bogus"}, "topic='bogus' is not"),
                                             ({"character": "Nobody"}, "'Nobody' is not"),
                                             ({"topic": "sea", "character": "Anna"}, "both")])
def test_world_target_refuses_unknown_or_two_targets(extras, message):
    with pytest.raises(ValueError, match=f"{message}.*fix"):
        world_target(None, 0, extras)


def test_a_concept_naming_no_topic_scores_nan_on_target_and_bad_extras_still_raise(
        monkeypatch):
    """Most concepts of the JumpReLU world run (tense, pronouns, sentence acts) name no topic
    or character: their on-target share is undefined (NaN), so an evaluation with the default
    scorers (the app's Steer page) runs instead of failing; a target the world lacks, named
    in extras, is still refused."""
    import cocomix_lens.world.steering_scorers as ws

    def no_target(run, concept, extras):
        if extras:
            return world_target(run, concept, extras)
        raise ws.NoTarget("concept 0's top output tokens (the, her) name no topic")

    monkeypatch.setattr(ws, "world_target", no_target)
    got = SCORERS["oracle_on_target"].fn(_readings({}))
    assert got.shape == (len(TEXTS),) and np.isnan(got).all()
    with pytest.raises(ValueError, match="'bogus' is not"):
        SCORERS["oracle_on_target"].fn(_readings({"topic": "bogus"}))
