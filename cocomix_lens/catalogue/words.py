"""Word forms folded to one key, so "farm", "farms", "farmer" and "farming" match each other.

A small deterministic suffix stripper (no dictionary, no language model): case-folded, one
inflectional or agentive suffix removed, a doubled final consonant undone and a final "e"
dropped, so "bake", "baker", "baked", "baking" all fold to "bak". Stems are match keys,
never shown; a concept's explanation shows the word form its contexts use most.

    fold("Farming") == fold("farmers") == "farm"
    token_stems(["the", " goat", " goats", "."])  # (array([0, 1, 1, -1]), ["the", "goat"])
"""

from __future__ import annotations

import re

import numpy as np

# longest first: "ings" before "ing" before "s"
_SUFFIXES = ("ings", "ers", "ies", "ing", "ied", "ier", "ed", "er", "es", "ly", "s")
_MIN_STEM = 3
_WORD = re.compile(r"[^\W\d_]+")
_VOWELS = set("aeiouy")


def fold(word: str) -> str:
    """The match key of one word ('' for text without a letter)."""
    m = _WORD.search(str(word).casefold())
    if not m:
        return ""
    w = m.group(0)
    for suffix in _SUFFIXES:
        stem = w[:-len(suffix)]
        if w.endswith(suffix) and len(stem) >= _MIN_STEM and not w.endswith("ss"):
            w = stem + ("y" if suffix in ("ies", "ied", "ier") else "")
            break
    if len(w) > _MIN_STEM and w[-1] == w[-2] and w[-1] not in _VOWELS | {"l", "s"}:
        w = w[:-1]  # running -> runn -> run; but "bell", "grass" keep theirs
    if len(w) > _MIN_STEM and w.endswith("e"):
        w = w[:-1]
    return w


def fold_text(text: str) -> list[str]:
    """The match keys of every word of `text`, in order."""
    return [fold(w) for w in _WORD.findall(str(text).casefold())]


def token_stems(vocab: list[str]) -> tuple[np.ndarray, list[str]]:
    """(stem id per token id [V] int64, -1 for tokens without a letter; the stems)."""
    keys = [fold(t) for t in vocab]
    stems = sorted({k for k in keys if k})
    index = {s: i for i, s in enumerate(stems)}
    return np.array([index.get(k, -1) for k in keys], dtype=np.int64), stems
