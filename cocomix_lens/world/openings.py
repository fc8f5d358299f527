"""Openings of held-out world documents as steering prompts, and topic cues made of the
world's own sentences (the prompting baselines of a steering benchmark).

    ops = openings(run.shards, "val")          # [Opening]: first sentences naming a character
    split = prompt_split(ops, "farming", 20)   # openings of OTHER topics, two disjoint halves
    split.selection, split.report              # search strengths on one, report on the other
    cue_before("farming", "past", seed=0)      # "News from Elmbury about cows. The pig was ripe."
    switch_line("farming", "past")             # "\\nLater, the talk turned to cows."

An opening is a document's first sentences up to and including the first one that names a
character (by name, not as a dialogue speaker tag), so a continuation can keep talking about
someone the opening introduced; its topic is the oracle's reading of those sentences.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cocomix_lens.world.grammar import TEMPLATES, realise
from cocomix_lens.world.lexicon import TOPICS, TOWNS
from cocomix_lens.world.oracle import parse_text

_ATTACHED = frozenset({".", ",", "?", ":", "!"})


@dataclass(frozen=True)
class Opening:
    """The opening of one held-out document."""

    text: str
    topic: str
    characters: tuple[str, ...]  # named in the opening (speaker tags excluded)
    tense: str
    doc: str  # the document's id in the shards


@dataclass(frozen=True)
class PromptSplit:
    """Openings for steering toward `topic`: `selection` (strengths are chosen on these) and
    `report` (figures are reported on these); no opening is in both."""

    topic: str
    selection: tuple[Opening, ...]
    report: tuple[Opening, ...]

    def half(self, name: str) -> tuple[Opening, ...]:
        if name not in ("selection", "report"):
            raise ValueError(f"half={name!r}; choose 'selection' or 'report'")
        return getattr(self, name)


def openings(shards: Any, split: str = "val", max_sentences: int = 2,
             max_chars: int = 80, limit: int | None = None) -> list[Opening]:
    """Openings of every document of `split` whose first `max_sentences` sentences name a
    character, have one topic and parse, in document order (the first `limit` of them)."""
    ids = shards.split(split)
    out: list[Opening] = []
    for d in shards.documents(split):
        if limit is not None and len(out) >= limit:
            break
        text = shards.decode(ids[d["start"]:d["end"]])
        opening = _opening(text[:4 * max_chars], max_sentences, max_chars)
        if opening is not None:
            out.append(Opening(*opening, d["id"]))
    return out


def _opening(text: str, max_sentences: int,
             max_chars: int) -> tuple[str, str, tuple[str, ...], str] | None:
    """(text, topic, characters, tense) of the opening of `text`, or None."""
    parses = parse_text(text)[:max_sentences]
    for n, s in enumerate(parses, 1):
        named = tuple(dict.fromkeys(m.character for m in s.mentions if m.kind == "name"))
        if not named:
            continue
        head = parses[:n]
        topics = {p.topic for p in head if p.topic}
        tense = next((p.tense for p in head if p.tense), None)
        if (len(topics) != 1 or tense is None or s.end > max_chars
                or not all(p.grammatical and p.complete for p in head)):
            return None
        return text[:s.end], topics.pop(), named, tense
    return None


def prompt_split(pool: Sequence[Opening], topic: str, n: int = 20,
                 seed: int = 0) -> PromptSplit:
    """`n` openings of documents on other topics than `topic` (seeded draw, at most one per
    document), the first half for selection, the second for reporting. The draw is balanced
    over the other topics as far as the pool allows."""
    if topic not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}; choose one of {', '.join(TOPICS)}")
    if n < 2:
        raise ValueError(f"n={n}: a prompt split needs at least 2 openings (one per half)")
    rng = random.Random(f"{seed}:{topic}")
    by_topic: dict[str, list[Opening]] = {}
    for o in pool:
        if o.topic != topic:
            by_topic.setdefault(o.topic, []).append(o)
    for group in by_topic.values():
        rng.shuffle(group)
    order = sorted(by_topic)
    rng.shuffle(order)
    chosen: list[Opening] = []
    while len(chosen) < n and any(by_topic.values()):
        for t in order:
            if by_topic[t] and len(chosen) < n:
                chosen.append(by_topic[t].pop())
    if len(chosen) < n:
        raise ValueError(f"only {len(chosen)} openings of topics other than {topic!r} in the "
                         f"pool; fix: pass n <= {len(chosen)} or a larger split")
    half = n // 2
    return PromptSplit(topic, tuple(chosen[:half]), tuple(chosen[half:]))


# ---- the world's own sentences as topic cues ----------------------------------------------
def sentence_text(words: Sequence[tuple[str, str]]) -> str:
    """Realised words [(word, slot)] as the corpus spells a sentence: first word capitalised,
    punctuation attached to the word before."""
    out = ""
    for i, (w, _) in enumerate(words):
        w = w[0].upper() + w[1:] if i == 0 else w
        out += w if (i == 0 or w in _ATTACHED) else " " + w
    return out


def cue_before(topic: str, tense: str, seed: int = 0) -> str:
    """Two character-free sentences on `topic` (a news header and a description), to put
    before an opening: "News from Elmbury about cows. The pig was ripe. "."""
    t, rng = TOPICS[topic], random.Random(f"{seed}:{topic}:cue")
    i = rng.randrange(len(t.nouns))
    header = realise(TEMPLATES["news"], tense, {"TOWN": rng.choice(TOWNS), "NS": t.plurals[i]})
    thing = realise(TEMPLATES["thing_is"], tense,
                    {"N": t.nouns[(i + 1) % len(t.nouns)], "ADJ": rng.choice(t.adjectives)})
    return f"{sentence_text(header)} {sentence_text(thing)} "


def switch_line(topic: str, tense: str, seed: int = 0) -> str:
    """The corpus's topic-switch marker toward `topic` on a new line, to put after an
    opening: "\\nLater, the talk turned to cows."."""
    t, rng = TOPICS[topic], random.Random(f"{seed}:{topic}:switch")
    words = realise(TEMPLATES["switch"], tense, {"NS": rng.choice(t.plurals)})
    return "\n" + sentence_text(words)
