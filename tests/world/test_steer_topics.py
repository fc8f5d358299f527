"""The world's steering families (cocomix_lens/world/steer_topics.py): registered into
`steering.topic_methods.FAMILIES` on import; each family's text, composed directly from the
world's cue functions."""

from __future__ import annotations

import pytest

from cocomix_lens.steering.topic_methods import FAMILIES, TopicMethod
from cocomix_lens.world.openings import Opening, cue_before, switch_line
from cocomix_lens.world.steer_topics import WORLD_FAMILIES

OPENING = Opening("Anna was a nurse.", "medicine", ("Anna",), "past", "val/3")


def test_the_world_registers_its_families_each_marked_as_needing_the_world():
    assert [f.name for f in WORLD_FAMILIES] == ["switch_vector", "prompt_cue", "prompt_switch"]
    assert all(FAMILIES[f.name] is f and f.world for f in WORLD_FAMILIES)
    assert {n for n, f in FAMILIES.items() if f.world} == {f.name for f in WORLD_FAMILIES}


@pytest.mark.parametrize("seed", [0, 3])
def test_each_family_continues_the_text_its_registry_entry_names(seed):
    expected = {
        "prompt_cue": cue_before("farming", "past", seed) + OPENING.text,
        "prompt_switch": OPENING.text + switch_line("farming", "past", seed),
    }
    for family in set(FAMILIES) - {"prompt_context"}:  # (its cue: tests/steering)
        m = TopicMethod(family, "", "farming", seed=seed)
        assert m.prompt(OPENING) == expected.get(family, OPENING.text), family
    assert expected["prompt_cue"] != expected["prompt_switch"] != OPENING.text

