"""Documents of the world: stories, reports and dialogues planned over latent variables.

Document `i` of seed `s` depends on (s, i) only (its own `random.Random`), so any prefix of
the corpus is the same whatever its size. Per document: a kind, a tense, a sentiment, a cast
of characters and a topic; sentences are statements in the current topic, a topic switch
happens at a marked sentence on a new line, a question is answered by the next sentence from
an earlier fact of the current topic, and a character is named before a pronoun refers to it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass

from cocomix_lens.world.grammar import TEMPLATES, realise
from cocomix_lens.world.lexicon import (
    FEMALE_NAMES,
    GENDER_OF,
    MALE_NAMES,
    NUMBERS,
    POSSESSIVE,
    PRONOUN,
    SENTIMENT,
    TOPIC_NAMES,
    TOPICS,
    TOWNS,
)
from training.corpus.world.writer import DocWriter, Sentence

KINDS = ("story", "report", "dialogue")
_TENSE_WEIGHTS = {"story": (6, 2, 2), "report": (3, 6, 1), "dialogue": (1, 1, 1)}
_NAMES = FEMALE_NAMES + MALE_NAMES
_QUANTITIES = NUMBERS[1:]  # "two" .. "twelve": a plural noun follows
# Statements and how often each is drawn; the ones needing a second character come last.
# Seven of the grammar's fourteen statement forms: a small model learns a few forms well
# (with all fourteen, a 300-step teacher wrote a template's form in only 62 % of sentences).
# The oracle still parses all of them.
_STATEMENTS = (("do_the", 5), ("do_num", 3), ("do_in_town", 3), ("do_poss", 2),
               ("thing_is", 2), ("feel_about", 1), ("do_with", 2))
_TWO_CHARACTERS = frozenset({"do_with", "gave"})
# A document switches topic (once, at a marked sentence) with this probability: rare switches
# keep a topic's tokens together, so a topic is a persistent, learnable context.
_SWITCH_P = 0.2
_STATEMENT_NAMES = tuple(n for n, _ in _STATEMENTS)
_STATEMENT_CUM = tuple(itertools.accumulate(w for _, w in _STATEMENTS))
_N_TWO = sum(n in _TWO_CHARACTERS for n in _STATEMENT_NAMES)
_PRONOUN_P = 0.6
# Statements whose fact a later question may ask about.
_FACTS = frozenset({"do_the", "do_num", "do_in_town", "in_town_do", "do_with"})


@dataclass
class Fact:
    """Something a statement asserted, which a later question may ask about."""

    subject: str
    verb: str
    noun: int  # index into the topic's nouns
    quantity: str | None
    town: str | None


class _Fill(dict):
    """A template filling whose lexical slots are drawn from the current topic on first
    read (a sentence reads only its own few slots)."""

    def __init__(self, plan: _Plan, name: str) -> None:
        super().__init__()
        self.plan, self.name = plan, name

    def __missing__(self, slot: str) -> str:
        p, r = self.plan, self.plan.rng
        t = TOPICS[p.topic]
        if slot == "N":
            value = r.choice(t.nouns)
        elif slot in ("V", "VB"):
            value = r.choice(t.verbs)[0]
        elif slot == "V2":  # the second verb of "do_and" differs from the first
            value = r.choice([v for v in t.verbs if v[0] != self["V"]])[0]
        elif slot == "S":
            value = p.subject(self.name)
        elif slot == "POSS":
            value = POSSESSIVE[GENDER_OF[self.name]]
        else:
            value = r.choice(_DRAW[slot](p, t))
        self[slot] = value
        return value


_DRAW = {"NS": lambda p, t: t.plurals, "ADJ": lambda p, t: t.adjectives,
         "ROLE": lambda p, t: t.roles, "NUM": lambda p, t: _QUANTITIES,
         "TOWN": lambda p, t: p.towns, "SENT": lambda p, t: SENTIMENT[p.sentiment]}


class _Plan:
    """The state of one document while it is generated."""

    def __init__(self, rng: random.Random, kind: str) -> None:
        self.rng = rng
        self.kind = kind
        self.out = DocWriter()
        self.tense = rng.choices(("past", "present", "future"), _TENSE_WEIGHTS[kind])[0]
        self.sentiment = rng.choice(("positive", "negative"))
        self.topic = rng.choice(TOPIC_NAMES)
        self.towns = rng.sample(TOWNS, 3)
        self.cast = rng.sample(_NAMES, rng.choice((1, 2, 2, 3)))
        self.speakers = rng.sample([n for n in _NAMES if n not in self.cast], 2)
        self.facts: list[Fact] = []
        self.turn = 0

    # ---- choices ----------------------------------------------------------------------------
    def subject(self, name: str) -> str:
        """A name, or its pronoun when the name is the last one of its gender."""
        g = GENDER_OF[name]
        if self.out.last_of_gender.get(g) == name and self.rng.random() < _PRONOUN_P:
            return PRONOUN[g]
        return name

    def lexical(self, name: str) -> _Fill:
        """Slots of the current topic for subject `name`, each drawn when first read."""
        return _Fill(self, name)

    def emit(self, template: str, fill: dict[str, str], chars: dict[str, str], act: str,
             speaker: str | None = None) -> None:
        t = TEMPLATES[template]
        words = realise(t, self.tense, fill)
        tensed = any(s in ("V", "BE", "BEP", "DO", "TURN", "GAVE") for s in t.slots)
        sentiment = self.sentiment if "SENT" in t.slots else None
        self.out.add(Sentence(words, chars, act, self.topic, self.tense if tensed else None,
                              sentiment, speaker))

    def speaker(self) -> str | None:
        if self.kind != "dialogue":
            return None
        self.out.newline()
        self.turn += 1
        return self.speakers[self.turn % 2]

    # ---- sentences --------------------------------------------------------------------------
    def intro(self, name: str) -> None:
        fill = self.lexical(name)
        if self.rng.random() < 0.5:
            fill["S"] = name
            self.emit("intro_from", fill, {"S": name}, "intro", self.speaker())
        else:
            fill["S2"] = name
            self.emit("intro_there", fill, {"S2": name}, "intro", self.speaker())

    def statement(self) -> None:
        n = len(_STATEMENTS) - (_N_TWO if len(self.cast) < 2 else 0)
        template = self.rng.choices(_STATEMENT_NAMES[:n], cum_weights=_STATEMENT_CUM[:n])[0]
        who = self.rng.choice(self.cast)
        fill = self.lexical(who)
        chars = {"S": who, "POSS": who}
        if template in _TWO_CHARACTERS:
            other = self.rng.choice([c for c in self.cast if c != who])
            fill["S2"], chars["S2"] = other, other
        self.emit(template, fill, chars, "statement", self.speaker())
        if template in _FACTS:
            t = TOPICS[self.topic]
            if template == "do_num":  # "how many" asks with the plural
                self.facts.append(Fact(who, fill["V"], t.plurals.index(fill["NS"]),
                                       fill["NUM"], None))
            else:
                self.facts.append(Fact(who, fill["V"], t.nouns.index(fill["N"]), None,
                                       fill.get("TOWN")))

    def question(self) -> None:
        """A question about an earlier fact of this topic, answered by the next sentence."""
        f = self.rng.choice(self.facts)
        t = TOPICS[self.topic]
        fill = self.lexical(f.subject)
        fill.update(VB=f.verb, V=f.verb)
        chars = {"S": f.subject, "POSS": f.subject, "PRON": f.subject}
        if f.quantity:
            fill.update(NS=t.plurals[f.noun], NUM=f.quantity)
            self.emit("q_how_many", fill, chars, "question", self.speaker())
            fill["S"] = self.subject(f.subject)
            self.emit("do_num", fill, chars, "answer", self.speaker())
            return
        fill["N"] = t.nouns[f.noun]
        fill["PRON"] = PRONOUN[GENDER_OF[f.subject]]
        kind = self.rng.choice(("where", "yes", "no", "what") if f.town else
                               ("yes", "no", "what"))
        if kind == "no":
            asked = {g.noun for g in self.facts if g.subject == f.subject and g.verb == f.verb}
            others = [i for i in range(len(t.nouns)) if i not in asked]
            fill["N"] = t.nouns[self.rng.choice(others)]
        q = {"where": "q_where", "yes": "q_yesno", "no": "q_yesno", "what": "q_what"}[kind]
        self.emit(q, fill, chars, "question", self.speaker())
        if kind == "what":
            fill["S"] = self.subject(f.subject)
        answer = {"where": "a_in_town", "yes": "a_yes", "no": "a_no", "what": "do_the"}[kind]
        fill["TOWN"] = f.town or fill["TOWN"]
        self.emit(answer, fill, chars, "answer", self.speaker())

    def switch(self) -> None:
        """A marked topic switch on a new line."""
        self.topic = self.rng.choice([t for t in TOPIC_NAMES if t != self.topic])
        self.facts = []
        self.out.newline()
        who = self.rng.choice(self.cast)
        fill = self.lexical(who)
        template = "switch" if self.rng.random() < 0.5 else "meanwhile"
        self.emit(template, fill, {"S": who}, "marker", self.speaker())

    def body(self, n: int, question_p: float) -> None:
        switch_at = self.rng.randrange(2, n - 1) if n > 4 and self.rng.random() < _SWITCH_P else -1
        for i in range(n):
            if i == switch_at:
                self.switch()
            elif self.facts and self.rng.random() < question_p:
                self.question()
            else:
                self.statement()


def _story(p: _Plan) -> None:
    for name in p.cast:
        p.intro(name)
    p.body(p.rng.randint(4, 10), 0.15)


def _report(p: _Plan) -> None:
    fill = p.lexical(p.cast[0])
    fill["TOWN"] = p.towns[0]
    p.emit("news", fill, {}, "header")
    p.body(p.rng.randint(4, 10), 0.3)


def _dialogue(p: _Plan) -> None:
    p.intro(p.cast[0])
    p.body(p.rng.randint(4, 10), 0.35)


_KINDS: dict[str, Callable[[_Plan], None]] = {
    "story": _story, "report": _report, "dialogue": _dialogue}


def generate(seed: int, index: int) -> tuple[str, list[list], dict[str, str]]:
    """Document `index` of world `seed` -> (text, spans [[start, end, variable, value]],
    document-level latents {kind, tense, sentiment})."""
    rng = random.Random(seed * 1_000_003 + index)
    kind = rng.choice(KINDS)
    plan = _Plan(rng, kind)
    _KINDS[kind](plan)
    text = plan.out.text()
    spans = [[0, len(text), "kind", kind], *plan.out.spans]
    return text, spans, {"kind": kind, "tense": plan.tense, "sentiment": plan.sentiment}
