"""TopicMethod.prompt (cocomix_lens/steering/topic_methods.py): each family's text, composed
directly from the world's cue functions."""

from __future__ import annotations

import pytest

from cocomix_lens.steering.topic_methods import FAMILIES, TopicMethod
from cocomix_lens.world.openings import Opening, cue_before, switch_line

OPENING = Opening("Anna was a nurse.", "medicine", ("Anna",), "past", "val/3")


@pytest.mark.parametrize("seed", [0, 3])
def test_each_family_continues_the_text_its_registry_entry_names(seed):
    expected = {
        "prompt_cue": cue_before("farming", "past", seed) + OPENING.text,
        "prompt_switch": OPENING.text + switch_line("farming", "past", seed),
    }
    for family in set(FAMILIES) - {"prompt_context"}:  # (its cue: the test below)
        m = TopicMethod(family, "", "farming", seed=seed)
        assert m.prompt(OPENING) == expected.get(family, OPENING.text), family
    assert expected["prompt_cue"] != expected["prompt_switch"] != OPENING.text


def test_context_prompt_goes_before_or_after_the_opening_by_variant():
    before = TopicMethod("prompt_context", "before", "goat", cue="The goat ate.")
    after = TopicMethod("prompt_context", "after", "goat", cue="The goat ate.")
    assert before.prompt(OPENING) == "The goat ate. Anna was a nurse."
    assert after.prompt(OPENING) == "Anna was a nurse. The goat ate."
