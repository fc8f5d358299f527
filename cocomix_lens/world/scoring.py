"""Scoring generated text with the oracle: shares of sentences that are grammatical, on a
topic, or mention a character, with per-sentence hits for a bootstrap over texts.

    g = grammatical_share(samples)            # Share: g.value, g.hits [n_sentences]
    t = topic_share(samples, "music")
    kept_share("Anna was a nurse.", " She healed the wound.")   # 1.0: she is Anna
    lo, hi = t.ci(level=0.95)                 # texts resampled with replacement

Which sentences count: every sentence of every text, except a text's last one when it is an
unfinished fragment (sampling stopped mid-sentence) and the text has a finished sentence; a
text that never finishes a sentence counts as one ungrammatical sentence. Pass continuations
that start at a sentence boundary (prompt ending in ". "), or the prompt and continuation
together, so the first sentence is whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cocomix_lens.world.oracle import SentenceParse, parse_text


@dataclass(frozen=True)
class Share:
    """Share of scored sentences that are hits. hits: bool [n]; text_index: int [n], the
    text each sentence came from (the unit a bootstrap resamples)."""

    hits: np.ndarray
    text_index: np.ndarray
    n_texts: int

    @property
    def n(self) -> int:
        return int(self.hits.size)

    @property
    def value(self) -> float:
        return float(self.hits.mean()) if self.hits.size else float("nan")

    def ci(self, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
        """Percentile bootstrap interval of `value`, resampling whole texts (sentences of
        one text are not independent)."""
        if not self.hits.size:
            return float("nan"), float("nan")
        hits = np.bincount(self.text_index, weights=self.hits, minlength=self.n_texts)
        counts = np.bincount(self.text_index, minlength=self.n_texts)
        rng = np.random.default_rng(seed)
        pick = rng.integers(0, self.n_texts, size=(n_boot, self.n_texts))
        num, den = hits[pick].sum(1), counts[pick].sum(1)
        boot = num[den > 0] / den[den > 0]
        alpha = (1 - level) / 2
        return float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))


def scored_sentences(text: str) -> list[SentenceParse]:
    """The sentences of `text` that scoring counts (see the module docstring)."""
    parses = parse_text(text)
    if len(parses) > 1 and not parses[-1].complete:
        parses = parses[:-1]
    return parses


def share(texts: Sequence[str], hit: Callable[[SentenceParse], bool]) -> Share:
    """Share of scored sentences of `texts` for which `hit(sentence)` holds."""
    hits: list[bool] = []
    index: list[int] = []
    for i, text in enumerate(texts):
        parses = scored_sentences(text)
        hits += [bool(hit(s)) for s in parses] or [False]
        index += [i] * max(len(parses), 1)
    return Share(np.array(hits, dtype=bool), np.array(index, dtype=np.int64), len(texts))


def grammatical_share(texts: Sequence[str]) -> Share:
    """Share of sentences the grammar parses (agreement included)."""
    return share(texts, lambda s: s.grammatical)


def form_share(texts: Sequence[str]) -> Share:
    """Share of sentences whose word classes match a template, agreement not required (a
    weaker bar than `grammatical_share`: "Anna baked the comet." has the form, not the
    agreement)."""
    return share(texts, lambda s: s.template is not None)


def topic_share(texts: Sequence[str], topic: str, grammatical_only: bool = False) -> Share:
    """Share of sentences whose own words are on `topic` (majority topic of their topic
    words); with `grammatical_only`, they must also parse."""
    return share(texts, lambda s: s.topic == topic and (s.grammatical or not grammatical_only))


def mention_share(texts: Sequence[str], character: str) -> Share:
    """Share of sentences mentioning `character` by name or by a pronoun resolved to it."""
    return share(texts, lambda s: character in s.characters)


def kept_share(prompt: str, continuation: str) -> float:
    """Share of `continuation`'s scored sentences that mention (by name or by a pronoun the
    oracle resolves, reading prompt and continuation together) a character the prompt names
    outside a speaker tag; 0.0 when the prompt names nobody or the continuation has no
    sentence."""
    parses = parse_text(prompt + continuation)
    named = {m.character for s in parses if s.end <= len(prompt)
             for m in s.mentions if m.kind == "name"}
    cont = [s for s in parses if s.start >= len(prompt)]
    if len(cont) > 1 and not cont[-1].complete:
        cont = cont[:-1]
    if not cont or not named:
        return 0.0
    hits = [any(m.character in named for m in s.mentions if m.kind != "speaker")
            for s in cont]
    return float(np.mean(hits))
