"""Steering prompts from world documents (cocomix_lens/world/openings.py): openings name a
character, splits draw other topics into two disjoint halves, cues are the world's own
on-topic sentences."""

from types import SimpleNamespace

import numpy as np
import pytest

from cocomix_lens.world import parse_text
from cocomix_lens.world.lexicon import TOPIC_NAMES
from cocomix_lens.world.openings import (
    Opening,
    _opening,
    cue_before,
    openings,
    prompt_split,
    switch_line,
)
from cocomix_lens.world.scoring import kept_share
from training.corpus.world.generator import generate


def pool(n_per_topic: int = 6) -> list[Opening]:
    return [Opening(f"{t} opening {i}.", t, ("Anna",), "past", f"{t}:{i}")
            for t in TOPIC_NAMES for i in range(n_per_topic)]


def test_openings_of_generated_documents_name_a_character_and_end_a_sentence():
    found = [o for o in (_opening(generate(0, i)[0], 2, 80) for i in range(60)) if o]
    assert len(found) >= 30
    for text, topic, characters, tense in found:
        parses = parse_text(text)
        assert parses[-1].complete and all(p.grammatical for p in parses)
        assert characters and all(c in text for c in characters)
        assert {p.topic for p in parses if p.topic} == {topic}


def test_openings_reads_every_document_of_a_split():
    texts = [generate(0, i)[0] for i in range(12)]
    ids = np.arange(sum(len(t) for t in texts))
    docs, at = [], 0
    for i, t in enumerate(texts):
        docs.append({"id": f"d{i}", "start": at, "end": at + len(t)})
        at += len(t)
    joined = "".join(texts)
    shards = SimpleNamespace(split=lambda s: ids, documents=lambda s: docs,
                             decode=lambda x: joined[int(x[0]):int(x[-1]) + 1])
    got = openings(shards, "val")
    assert got and all(joined[d["start"]:].startswith(o.text) for o in got
                       for d in docs if d["id"] == o.doc)


def test_halves_never_share_a_prompt_and_hold_other_topics_only():
    ops = pool()
    for topic in TOPIC_NAMES:
        split = prompt_split(ops, topic, 20, seed=1)
        sel, rep = set(split.selection), set(split.report)
        assert len(sel) == len(rep) == 10 and not sel & rep
        assert all(o.topic != topic for o in sel | rep)
        assert len({o.topic for o in sel | rep}) == len(TOPIC_NAMES) - 1  # balanced draw
        assert prompt_split(ops, topic, 20, seed=1) == split


def test_a_pool_too_small_is_refused_in_one_line():
    with pytest.raises(ValueError, match="only 6 openings"):
        prompt_split([o for o in pool() if o.topic in ("sea", "war")], "sea", 20)


@pytest.mark.parametrize("tense", ["past", "present", "future"])
def test_cues_are_grammatical_sentences_on_the_topic_without_characters(tense):
    for topic in TOPIC_NAMES:
        for text in (cue_before(topic, tense), switch_line(topic, tense)):
            parses = parse_text(text)
            assert parses and all(p.grammatical and p.topic == topic for p in parses)
            assert not any(p.mentions for p in parses)
    assert switch_line("sea", "past").startswith("\nLater, the talk turned to ")


def test_kept_share_counts_sentences_about_the_prompts_characters():
    assert kept_share("Anna was a nurse.", " She healed the wound. Tom cooked the soup.") == 0.5
    assert kept_share("Anna was a nurse.", " Tom cooked the soup. He baked a pie.") == 0.0
    assert kept_share("The soup was hot.", " Anna cooked the soup.") == 0.0  # nobody named
    # a trailing fragment is not scored; a speaker tag is not a mention
    assert kept_share("Anna was a nurse.", " She healed the wound. Sh") == 1.0
    assert kept_share("Carl: There is a nurse called Anna.", "\nAnna: Tom cooked the soup.") == 0.0
