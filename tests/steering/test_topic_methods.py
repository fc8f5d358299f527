"""TopicMethod.prompt (cocomix_lens/steering/topic_methods.py): the families here continue the
opening's text, read through nothing but its `text` (the world's own families:
tests/world/test_steer_topics.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cocomix_lens.steering.topic_methods import FAMILIES, Family, TopicMethod, register_family


@dataclass(frozen=True)
class Text:
    """An opening of any corpus: only its text."""

    text: str


OPENING = Text("Anna was a nurse.")


def test_each_family_without_a_grammar_continues_the_opening_as_it_is():
    for family in {n for n, f in FAMILIES.items() if not f.world} - {"prompt_context"}:
        assert TopicMethod(family, "", "farming").prompt(OPENING) == OPENING.text, family


def test_context_prompt_goes_before_or_after_the_opening_by_variant():
    before = TopicMethod("prompt_context", "before", "goat", cue="The goat ate.")
    after = TopicMethod("prompt_context", "after", "goat", cue="The goat ate.")
    assert before.prompt(OPENING) == "The goat ate. Anna was a nurse."
    assert after.prompt(OPENING) == "Anna was a nurse. The goat ate."


def test_a_registered_family_writes_its_own_prompt_and_an_unknown_one_is_refused():
    with pytest.raises(ValueError, match="unknown steering family 'shout'"):
        TopicMethod("shout", "", "goat")
    family = Family("shout", "student", "none", "the opening in capitals",
                    lambda m, o: o.text.upper())
    try:
        assert register_family(family) is FAMILIES["shout"] is family
        assert TopicMethod("shout", "", "goat").prompt(OPENING) == "ANNA WAS A NURSE."
    finally:
        del FAMILIES["shout"]
