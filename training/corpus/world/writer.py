"""`DocWriter`: assembles a document's text sentence by sentence and records its ground
truth as character spans [start, end, variable, value] (see cocomix_lens.data.truth).

Spacing is the one the oracle reads back: words separated by a space, punctuation attached
to the word before, the first word of a sentence capitalised, dialogue lines and topic
switches on a new line, a speaker tag "Name: " before a dialogue line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cocomix_lens.world.grammar import CHARACTER_SLOTS
from cocomix_lens.world.lexicon import GENDER_OF, NUMBER_VALUE

_ATTACHED = frozenset({".", ",", "?", ":"})


@dataclass
class Sentence:
    """What a sentence means: its words [(word, slot)], the character each character slot
    names, and its sentence-level latents."""

    words: list[tuple[str, str]]
    characters: dict[str, str]
    act: str
    topic: str
    tense: str | None
    sentiment: str | None = None
    speaker: str | None = None


@dataclass
class DocWriter:
    """Text and spans of one document under construction."""

    parts: list[str] = field(default_factory=list)
    spans: list[list] = field(default_factory=list)
    pos: int = 0
    line_start: bool = True
    last_of_gender: dict[str, str] = field(default_factory=dict)

    def newline(self) -> None:
        if not self.line_start:
            self.parts.append("\n")
            self.pos += 1
            self.line_start = True

    def add(self, s: Sentence) -> None:
        """Write sentence `s`; a character slot's span names the character it refers to."""
        # One pass with local names: this loop is most of the world's generation time.
        parts, spans, pos = self.parts, self.spans, self.pos
        words = s.words
        if s.speaker:
            words = [(s.speaker, "SPEAKER"), (":", ":"), *words]
        start = pos + (0 if self.line_start else 1)
        first = 2 if s.speaker else 0
        for i, (word, slot) in enumerate(words):
            if i == first:
                word = word[0].upper() + word[1:]
            if not self.line_start and word not in _ATTACHED:
                parts.append(" ")
                pos += 1
            self.line_start = False
            parts.append(word)
            a, pos = pos, pos + len(word)
            if slot in CHARACTER_SLOTS:
                name = s.characters[slot] if slot != "SPEAKER" else s.speaker
                spans.append([a, pos, "character", name])
                spans.append([a, pos, "gender", GENDER_OF[name]])
                if slot in ("S", "S2") and word == name:
                    self.last_of_gender[GENDER_OF[name]] = name
            elif slot == "TOWN":
                spans.append([a, pos, "place", word])
            elif slot == "NUM":
                spans.append([a, pos, "quantity", str(NUMBER_VALUE[word])])
        self.pos = pos
        spans.append([start, pos, "topic", s.topic])
        spans.append([start, pos, "act", s.act])
        if s.tense:
            spans.append([start, pos, "tense", s.tense])
        if s.sentiment:
            spans.append([start, pos, "sentiment", s.sentiment])

    def text(self) -> str:
        return "".join(self.parts)
