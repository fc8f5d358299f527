"""The oracle: recover the world's latent variables from any text.

    for s in parse_text("Anna was a baker from Elmbury. She baked seven pies."):
        s.grammatical, s.topic, s.tense, [m.character for m in s.mentions]
    # True cooking past ['Anna'] / True cooking past ['Anna']

Each word is tagged by dictionary look-up (every word form has one tag), the sentence's
sequence of word classes is looked up among the compiled templates (`grammar.FORMS`), and
agreement is checked: all topic words share one topic, "a"/"an" fit the next word, a
possessive has its subject's gender. A pronoun or possessive resolves to the most recently
named character of its gender (speaker tags in dialogues do not count), the rule the
generator follows. A sentence with no topic word inherits the document's running topic
(`context_topic`), as topics persist until a marked switch.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from cocomix_lens.world.grammar import FORMS, TOPIC_CLASSES, Form, article
from cocomix_lens.world.lexicon import TAGS

_TOKEN = re.compile(r"[A-Za-z]+|[.,?:!]|\n|[^\sA-Za-z.,?:!]+")
_END = frozenset({".", "?", "!"})
MENTION_KINDS = {"NAME": "name", "PRON": "pronoun", "POSS": "possessive"}


@dataclass(frozen=True)
class Mention:
    """A character mention at text[start:end]; `character` is None for a pronoun with no
    antecedent of its gender."""

    start: int
    end: int
    character: str | None
    gender: str
    kind: str  # name | pronoun | possessive | speaker


@dataclass(frozen=True)
class SentenceParse:
    """One sentence of a parsed text; offsets index the parsed string."""

    start: int
    end: int
    complete: bool  # ends with . ? or !
    grammatical: bool
    template: str | None
    act: str | None
    tense: str | None
    topic: str | None  # from its own words (majority if they disagree); None if it has none
    context_topic: str | None  # `topic`, or the running topic of the text when None
    sentiment: str | None
    mentions: tuple[Mention, ...] = ()
    places: tuple[tuple[int, int, str], ...] = ()
    quantities: tuple[tuple[int, int, int], ...] = ()
    words: tuple[str, ...] = field(default=(), repr=False)

    @property
    def characters(self) -> tuple[str, ...]:
        """Characters mentioned (speaker tags included), in order, without repeats."""
        return tuple(dict.fromkeys(m.character for m in self.mentions if m.character))


@dataclass
class _State:
    last_of_gender: dict[str, str] = field(default_factory=dict)
    topic: str | None = None
    after_question: bool = False


def tag_of(word: str) -> str | None:
    """The lexicon tag of `word` (case-insensitive for common words, exact for names)."""
    return TAGS.get(word) or TAGS.get(word.lower())


def word_class(tag: str | None) -> str:
    if tag is None:
        return "?"
    if tag in ("a", "an"):
        return "A"
    return tag.split(":", 1)[0]


def parse_text(text: str) -> list[SentenceParse]:
    """Split `text` into sentences (at . ? ! and line ends) and parse each in context."""
    state = _State()
    out: list[SentenceParse] = []
    line_start = True
    sent: list[re.Match] = []
    speaker: Mention | None = None
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if tok == "\n":
            if sent:
                out.append(_parse(sent, speaker, state, complete=False))
            sent, speaker, line_start = [], None, True
            continue
        if line_start and not sent and speaker is None and tag_of(tok) and \
                word_class(tag_of(tok)) == "NAME" and _next_is_colon(text, m.end()):
            speaker = Mention(m.start(), m.end(), tok, tag_of(tok).split(":")[1], "speaker")
            continue
        if tok == ":" and speaker is not None and not sent:
            continue
        line_start = False
        sent.append(m)
        if tok in _END:
            out.append(_parse(sent, speaker, state, complete=True))
            sent, speaker = [], None
    if sent:
        out.append(_parse(sent, speaker, state, complete=False))
    return out


def _next_is_colon(text: str, pos: int) -> bool:
    rest = text[pos:pos + 3].lstrip(" ")
    return rest.startswith(":")


def _parse(toks: list[re.Match], speaker: Mention | None, state: _State,
           complete: bool) -> SentenceParse:
    words = tuple(t.group() for t in toks)
    tags = [tag_of(w) for w in words]
    classes = tuple(word_class(t) for t in tags)
    form = FORMS.get(classes) if complete else None
    topics = [t.split(":")[1] for t, c in zip(tags, classes) if c in TOPIC_CLASSES]
    topic = Counter(topics).most_common(1)[0][0] if topics else None
    mentions = _mentions(toks, tags, classes, speaker, state)
    grammatical = form is not None and _agrees(words, tags, classes, topics)
    act = form.template.act if form else None
    if act == "statement" and state.after_question:
        act = "answer"  # a statement right after a question answers it
    state.after_question = act == "question"
    state.topic = topic or state.topic
    start = speaker.start if speaker else toks[0].start()
    return SentenceParse(
        start=start, end=toks[-1].end(), complete=complete, grammatical=grammatical,
        template=form.template.name if form else None, act=act, tense=_tense(form, classes),
        topic=topic, context_topic=state.topic, sentiment=_value(tags, classes, "SENT"),
        mentions=mentions,
        places=tuple((t.start(), t.end(), t.group()) for t, c in zip(toks, classes)
                     if c == "TOWN"),
        quantities=tuple((t.start(), t.end(), int(tag.split(":")[1]))
                         for t, tag, c in zip(toks, tags, classes) if c == "NUM"),
        words=words)


def _mentions(toks: list[re.Match], tags: list[str | None], classes: tuple[str, ...],
              speaker: Mention | None, state: _State) -> tuple[Mention, ...]:
    out = [speaker] if speaker else []
    for t, tag, c in zip(toks, tags, classes):
        if c not in MENTION_KINDS:
            continue
        gender = tag.split(":")[1]
        if c == "NAME":
            character: str | None = t.group()
            state.last_of_gender[gender] = t.group()
        else:
            character = state.last_of_gender.get(gender)
        out.append(Mention(t.start(), t.end(), character, gender, MENTION_KINDS[c]))
    return tuple(out)


def _agrees(words: tuple[str, ...], tags: list[str | None], classes: tuple[str, ...],
            topics: list[str]) -> bool:
    if len(set(topics)) > 1:
        return False
    for i, c in enumerate(classes):
        if c == "A" and words[i].lower() != article(words[i + 1]):
            return False
    subject = next((tags[i] for i, c in enumerate(classes) if c in ("NAME", "PRON")), None)
    for tag, c in zip(tags, classes):
        if c == "POSS" and (subject is None or subject.split(":")[1] != tag.split(":")[1]):
            return False
    return True


def _tense(form: Form | None, classes: tuple[str, ...]) -> str | None:
    if form is not None:
        return form.tense
    if "will" in classes:
        return "future"
    if "VD" in classes or "was" in classes or "did" in classes:
        return "past"
    if "VZ" in classes or "is" in classes or "does" in classes:
        return "present"
    return None


def _value(tags: list[str | None], classes: tuple[str, ...], cls: str) -> str | None:
    return next((t.split(":")[1] for t, c in zip(tags, classes) if c == cls), None)


def document_kind(parses: list[SentenceParse]) -> str:
    """story, report or dialogue, from the document's form: speaker tags make a dialogue, a
    news header a report."""
    if any(m.kind == "speaker" for s in parses for m in s.mentions):
        return "dialogue"
    if parses and parses[0].template == "news":
        return "report"
    return "story"


def to_spans(text: str, parses: list[SentenceParse] | None = None) -> list[list]:
    """The oracle's reading of `text` as ground-truth spans [start, end, variable, value],
    the format a corpus source writes (cocomix_lens.data.truth), so both can be compared."""
    parses = parse_text(text) if parses is None else parses
    spans: list[list] = [[0, len(text), "kind", document_kind(parses)]]
    for s in parses:
        for m in s.mentions:
            if m.character:
                spans += [[m.start, m.end, "character", m.character],
                          [m.start, m.end, "gender", m.gender]]
        spans += [[a, b, "place", town] for a, b, town in s.places]
        spans += [[a, b, "quantity", str(q)] for a, b, q in s.quantities]
        for variable, value in (("topic", s.context_topic), ("act", s.act),
                                ("tense", s.tense), ("sentiment", s.sentiment)):
            if value is not None:
                spans.append([s.start, s.end, variable, value])
    return spans
