"""The world's sentence templates, their realisation as words, and the compiled table the
oracle parses with.

A template is a sequence of slots. Lexical slots take a word of the lexicon (`N` a topic
noun, `NS` its plural, `ADJ`, `ROLE`, `VB` a base verb, `NUM`, `TOWN`, `SENT`); character
slots take a mention (`S` the subject: a name or a pronoun, `S2` a second character's name,
`POSS` the subject's possessive, `PRON` a pronoun); tensed slots (`V`, `BE`, `BEP`, `DO`,
`TURN`, `GAVE`) are spelled by the document's tense; `A` is "a" or "an" by the next word;
anything else is a literal word or punctuation.

    words = realise(TEMPLATES["do_num"], "past", {"S": "Anna", "V": "sell", "NUM": "seven",
                                                   "NS": "coins"})
    # [("Anna", "S"), ("sold", "V"), ("seven", "NUM"), ("coins", "NS"), (".", ".")]
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from cocomix_lens.world.lexicon import TAGS, TOPICS

TENSES = ("past", "present", "future")
ACTS = ("intro", "header", "statement", "marker", "question", "answer")

# Tensed auxiliaries: slot -> tense -> words.
_TENSED = {
    "BE": {"past": ("was",), "present": ("is",), "future": ("will", "be")},
    "BEP": {"past": ("were",), "present": ("are",), "future": ("will", "be")},
    "DO": {"past": ("did",), "present": ("does",), "future": ("will",)},
    "TURN": {"past": ("turned",), "present": ("turns",), "future": ("will", "turn")},
    "GAVE": {"past": ("gave",), "present": ("gives",), "future": ("will", "give")},
}
# The class of each topic verb form a tense uses for slot V.
_VERB_CLASS = {"past": ("VD",), "present": ("VZ",), "future": ("will", "VB")}
TOPIC_CLASSES = frozenset({"N", "NS", "ADJ", "ROLE", "VB", "VZ", "VD"})
CHARACTER_SLOTS = frozenset({"S", "S2", "POSS", "PRON", "SPEAKER"})
LEXICAL_SLOTS = frozenset({"N", "NS", "ADJ", "ROLE", "VB", "NUM", "TOWN", "SENT"})
_FILLED = LEXICAL_SLOTS | CHARACTER_SLOTS


@dataclass(frozen=True)
class Template:
    """One sentence form. `act` is what the sentence does in a document."""

    name: str
    act: str
    slots: tuple[str, ...]


def _t(name: str, act: str, spec: str) -> Template:
    return Template(name, act, tuple(spec.split()))


TEMPLATES: dict[str, Template] = {t.name: t for t in (
    _t("do_the", "statement", "S V the N ."),
    _t("do_num", "statement", "S V NUM NS ."),
    _t("do_in_town", "statement", "S V the ADJ N in TOWN ."),
    _t("do_poss", "statement", "S V POSS N ."),
    _t("do_poss_adj", "statement", "S V POSS ADJ NS ."),
    _t("do_with", "statement", "S V the N with S2 ."),
    _t("do_and", "statement", "S V the N and V the NS ."),
    _t("in_town_do", "statement", "in TOWN , S V the N ."),
    _t("then_do", "statement", "then S V A ADJ N ."),
    _t("gave", "statement", "S GAVE S2 NUM NS ."),
    _t("thing_is", "statement", "the N BE ADJ ."),
    _t("things_are", "statement", "the NS BEP ADJ ."),
    _t("feel_about", "statement", "S BE SENT about the N ."),
    _t("day_for", "statement", "it BE A SENT day for NS ."),
    _t("intro_from", "intro", "S BE A ROLE from TOWN ."),
    _t("intro_there", "intro", "there BE A ROLE called S2 ."),
    _t("news", "header", "news from TOWN about NS ."),
    _t("switch", "marker", "later , the talk TURN to NS ."),
    _t("meanwhile", "marker", "meanwhile , S V the N ."),
    _t("q_how_many", "question", "how many NS DO S VB ?"),
    _t("q_where", "question", "where DO S VB the N ?"),
    _t("q_yesno", "question", "DO S VB the N ?"),
    _t("q_what", "question", "what DO S VB ?"),
    _t("a_in_town", "answer", "in TOWN ."),
    _t("a_yes", "answer", "yes , PRON DO ."),
    _t("a_no", "answer", "no , PRON DO not ."),
)}
"""Every sentence form of the world, by name."""


def article(next_word: str) -> str:
    """'an' before a vowel letter, else 'a' (the world has no 'an hour' or 'a unicorn')."""
    return "an" if next_word[:1].lower() in "aeiou" else "a"


def realise(template: Template, tense: str, fill: dict[str, str]) -> list[tuple[str, str]]:
    """Words of `template` in `tense` -> [(word, slot)]. `fill` maps lexical and character
    slots to words (a mapping that may fill slots on demand); `V` (and `V2`, a template's
    second `V`) and `VB` take a verb's base form and are inflected here."""
    out: list[tuple[str, str]] = []
    for slot in template.slots:
        if slot in _TENSED:
            out += [(w, slot) for w in _TENSED[slot][tense]]
        elif slot == "V":
            out += _verb(fill["V2" if any(s == "V" for _, s in out) else "V"], tense)
        elif slot in _FILLED:
            out.append((fill[slot], slot))
        elif slot == "A":
            out.append(("A", "A"))  # spelled once the next word is known
        else:
            out.append((slot, slot))
    for i, (w, s) in enumerate(out):
        if s == "A":
            out[i] = (article(out[i + 1][0]), "A")
    return out


def _verb(base: str, tense: str) -> list[tuple[str, str]]:
    topic = TAGS[base].split(":")[1]
    forms = next(v for v in TOPICS[topic].verbs if v[0] == base)
    if tense == "past":
        return [(forms[2], "V")]
    if tense == "present":
        return [(forms[1], "V")]
    return [("will", "V"), (base, "V")]


# ---- the compiled table ---------------------------------------------------------------------
@dataclass(frozen=True)
class Form:
    """One concrete class sequence: a template in a tense with its subject spelled one way.
    `slots[i]` is the template slot word i fills."""

    template: Template
    tense: str | None
    slots: tuple[str, ...]


def _classes(template: Template, tense: str, subject: str) -> tuple[tuple[str, ...],
                                                                   tuple[str, ...]]:
    """(word classes, slot of each word) of `template` in `tense`, S spelled as `subject`
    (NAME or PRON)."""
    classes: list[str] = []
    slots: list[str] = []
    for slot in template.slots:
        if slot in _TENSED:
            words = _TENSED[slot][tense]
        elif slot == "V":
            words = _VERB_CLASS[tense]
        elif slot == "S":
            words = (subject,)
        elif slot in ("S2", "SPEAKER"):
            words = ("NAME",)
        elif slot in ("A",):
            words = ("A",)
        else:
            words = (slot,)
        classes += words
        slots += [slot] * len(words)
    return tuple(classes), tuple(slots)


def _tensed(template: Template) -> bool:
    return any(s in _TENSED or s == "V" for s in template.slots)


def compile_forms() -> dict[tuple[str, ...], Form]:
    """class sequence -> Form for every template, tense and spelling of its subject;
    raises if two forms share a class sequence (the parse would be ambiguous)."""
    table: dict[tuple[str, ...], Form] = {}
    for template in TEMPLATES.values():
        tenses = TENSES if _tensed(template) else (None,)
        subjects = ("NAME", "PRON") if "S" in template.slots else ("NAME",)
        for tense, subject in itertools.product(tenses, subjects):
            classes, slots = _classes(template, tense or "past", subject)
            if classes in table:
                raise ValueError(f"grammar: {template.name} and {table[classes].template.name} "
                                 f"share the form {' '.join(classes)}")
            table[classes] = Form(template, tense, slots)
    return table


FORMS: dict[tuple[str, ...], Form] = compile_forms()
"""Word-class sequence -> the (template, tense) it realises."""
