"""How well concepts recover known latent variables: F1 of every (concept, variable value)
pair over tokens, the best concept per value, coverage, and each concept's best value.

A concept "fires" on a token when it is among the token's active set: an SAE latent among the
top-k active latents, a label among the teacher's k attribution labels, or a concept among a
student's top-k predicted concept logits. A value holds on a token per the ground truth
(`cocomix_lens.data.truth`). For concept c and value v over N tokens:

    F1(c, v) = 2 |fires(c) & holds(v)| / (|fires(c)| + |holds(v)|)

(counted as 0 when it is no better than a concept firing on every token would score).

    rec = Recovery.from_active(active, {"topic": (topic_col, topic_values), ...}, n_concepts)
    rec.coverage()              # {"topic": 0.86, ...}: share of values with a concept of F1 >= 0.8
    rec.best_match(17)          # ("topic", "cooking", 0.93)
    # A sentence-scoped variable (topic) is judged per sentence: a concept "detects" the
    # sentence's topic when it fires on any of its tokens.
    rec = Recovery.from_active(*pool_units(active, sentence, {"topic": (topic_col, names)}),
                               n_concepts)
    concept_names(Run.open("runs/demo"))  # {17: "topic=cooking", ...}: its groundtruth.json
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

COVERAGE_F1 = 0.8


@dataclass(frozen=True)
class MatchTable:
    """Counts for one variable. tp: int64 [n_concepts, n_values] tokens where the concept
    fires and the value holds; fired: [n_concepts]; held: [n_values]."""

    tp: np.ndarray
    fired: np.ndarray
    held: np.ndarray

    @classmethod
    def count(cls, active: np.ndarray, truth: np.ndarray, n_concepts: int,
              n_values: int) -> MatchTable:
        """active: int [N, k] concept ids firing per token (-1 = padding, repeats ignored);
        truth: int [N] value index per token (-1 = none)."""
        active = np.asarray(active, dtype=np.int64)
        truth = np.asarray(truth, dtype=np.int64)
        if active.ndim != 2 or len(active) != len(truth):
            raise ValueError(f"active must be [N, k] and truth [N]; got {active.shape} and "
                             f"{truth.shape}")
        active = _dedupe(active)
        tok, slot = np.nonzero(active >= 0)
        concept = active[tok, slot]
        fired = np.bincount(concept, minlength=n_concepts)
        held = np.bincount(truth[truth >= 0], minlength=n_values)
        hit = truth[tok] >= 0
        tp = np.bincount(concept[hit] * n_values + truth[tok][hit],
                         minlength=n_concepts * n_values).reshape(n_concepts, n_values)
        return cls(tp, fired, held)

    def f1(self) -> np.ndarray:
        """float [n_concepts, n_values]."""
        den = self.fired[:, None] + self.held[None, :]
        return np.divide(2.0 * self.tp, den, out=np.zeros(self.tp.shape), where=den > 0)

    def without_trivial(self, n_rows: int) -> np.ndarray:
        """`f1()` with 0 wherever a concept does no better than one firing on all `n_rows`
        rows (F1 = 2p / (1 + p) for a value held on a share p): a concept on every sentence
        "matches" act=statement, held by 70 % of sentences, at F1 0.82 and means nothing."""
        p = self.held / max(n_rows, 1)
        f1 = self.f1()
        return np.where(f1 > (2 * p / (1 + p))[None, :], f1, 0.0)


def pool_units(active: np.ndarray, units: np.ndarray,
               truth: dict[str, tuple[np.ndarray, list[str]]]
               ) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, list[str]]]]:
    """Token rows pooled into units (e.g. sentences): (active [U, w], truth per unit).

    A sparse concept cannot fire on every token of a sentence ("the", "."), so token-level F1
    with a sentence-scoped variable has a ceiling far below 1 (world topic words are ~26 % of
    tokens). Pooled, a unit's active set is the union of its tokens' concepts and its value
    the one its tokens hold (the last, for a variable constant within a unit).
    active: int [N, k] (-1 = padding); units: int [N], non-decreasing unit id per token."""
    active = np.asarray(active, dtype=np.int64)
    units = np.asarray(units, dtype=np.int64)
    if len(units) != len(active) or (units.size and np.any(np.diff(units) < 0)):
        raise ValueError(f"units must be a non-decreasing int [N] with N = {len(active)} "
                         f"rows of active; got shape {units.shape}")
    n_units = int(units.max()) + 1 if units.size else 0
    tok, slot = np.nonzero(active >= 0)
    pairs = np.unique(np.stack([units[tok], active[tok, slot]], 1), axis=0)
    counts = np.bincount(pairs[:, 0], minlength=n_units) if len(pairs) else np.zeros(
        n_units, dtype=np.int64)
    pooled = -np.ones((n_units, max(int(counts.max(initial=0)), 1)), dtype=np.int64)
    pos = np.arange(len(pairs)) - np.repeat(np.cumsum(counts) - counts, counts)
    pooled[pairs[:, 0], pos] = pairs[:, 1]
    out = {}
    for var, (col, names) in truth.items():
        col = np.asarray(col, dtype=np.int64)
        value = -np.ones(n_units, dtype=np.int64)
        held = col >= 0
        value[units[held]] = col[held]
        out[var] = (value, names)
    return pooled, out


def unit_ids(ends: np.ndarray) -> np.ndarray:
    """int [N]: the unit (sentence) of each token, from bool [N] "this token ends a unit"."""
    ends = np.asarray(ends, dtype=bool)
    return np.concatenate([[0], np.cumsum(ends[:-1])]).astype(np.int64) if ends.size else \
        np.zeros(0, dtype=np.int64)


def _dedupe(active: np.ndarray) -> np.ndarray:
    """A concept listed twice on one token counts once."""
    s = np.sort(active, axis=1)
    dup = np.zeros_like(s, dtype=bool)
    dup[:, 1:] = s[:, 1:] == s[:, :-1]
    return np.where(dup, -1, s)


@dataclass
class Recovery:
    """F1 tables of one concept source against every variable."""

    values: dict[str, list[str]]
    f1: dict[str, np.ndarray]  # variable -> [n_concepts, n_values]
    held: dict[str, np.ndarray]  # variable -> tokens per value [n_values]

    @classmethod
    def from_active(cls, active: np.ndarray, truth: dict[str, tuple[np.ndarray, list[str]]],
                    n_concepts: int) -> Recovery:
        """active: int [N, k]; truth: variable -> (int [N] value index, value names)."""
        f1, held = {}, {}
        for var, (col, names) in truth.items():
            table = MatchTable.count(active, col, n_concepts, len(names))
            f1[var], held[var] = table.without_trivial(len(active)), table.held
        return cls({v: list(n) for v, (_, n) in truth.items()}, f1, held)

    @property
    def n_concepts(self) -> int:
        return next(iter(self.f1.values())).shape[0] if self.f1 else 0

    def best_per_value(self, variable: str) -> list[tuple[str, int, float]]:
        """[(value, best concept, its F1)] for every value seen in the tokens."""
        f1 = self.f1[variable]
        best = f1.argmax(0)
        return [(name, int(best[j]), float(f1[best[j], j]))
                for j, name in enumerate(self.values[variable]) if self.held[variable][j] > 0]

    def coverage(self, threshold: float = COVERAGE_F1) -> dict[str, float]:
        """Variable -> share of its (seen) values whose best concept has F1 >= threshold."""
        out = {}
        for var in self.f1:
            best = [f for _, _, f in self.best_per_value(var)]
            out[var] = float(np.mean([f >= threshold for f in best])) if best else float("nan")
        return out

    def best_match(self, concept: int) -> tuple[str, str, float]:
        """(variable, value, F1) of the value concept `concept` matches best, over all
        variables; ("", "", 0.0) when it never fires on a token with a known value."""
        best = ("", "", 0.0)
        for var, f1 in self.f1.items():
            j = int(f1[concept].argmax())
            if f1[concept, j] > best[2]:
                best = (var, self.values[var][j], float(f1[concept, j]))
        return best

    def names(self, threshold: float = COVERAGE_F1) -> dict[int, str]:
        """Concept -> "variable=value" for every concept whose best match reaches
        `threshold` (a catalogue name)."""
        out = {}
        for c in range(self.n_concepts):
            var, value, f = self.best_match(c)
            if f >= threshold:
                out[c] = f"{var}={value}"
        return out

    def summary(self, threshold: float = COVERAGE_F1) -> dict[str, Any]:
        """JSON-able: per variable its coverage, mean best F1 and the best concept per value;
        and the best match of every concept with F1 >= 0.5 (for naming)."""
        variables = {}
        cov = self.coverage(threshold)
        for var in self.f1:
            best = self.best_per_value(var)
            variables[var] = {
                "coverage": cov[var], "mean_best_f1": float(np.mean([f for *_, f in best]))
                if best else None,
                "values": {name: {"concept": c, "f1": round(f, 4)} for name, c, f in best}}
        matches = {}
        for c in range(self.n_concepts):
            var, value, f = self.best_match(c)
            if f >= 0.5:
                matches[str(c)] = {"variable": var, "value": value, "f1": round(f, 4)}
        return {"threshold": threshold, "variables": variables, "concepts": matches}


def best_match_from_summary(summary: dict[str, Any], concept: int) -> tuple[str, str, float]:
    """`Recovery.best_match` read back from `Recovery.summary()` (e.g. in summary.json);
    ("", "", 0.0) for a concept below the summary's 0.5 floor."""
    m = summary.get("concepts", {}).get(str(concept))
    return (m["variable"], m["value"], float(m["f1"])) if m else ("", "", 0.0)


def concept_names(run: Any, source: str = "sae",
                  threshold: float = COVERAGE_F1) -> dict[int, str]:
    """Concept -> "variable=value" for the concepts of `source` whose best-matching value
    has F1 >= threshold (token-level, or sentence-level for sentence-scoped variables, the
    higher), read from a run's groundtruth.json; {} when the run has none (its corpus has no
    known latents). `run` is a `cocomix_lens.Run` (typed Any: rundir imports this module's
    importers); the file is `run.groundtruth`: {"tokens", "sources": {"sae" | "labels" |
    "student": Recovery.summary()}, "sentence_sources"?, ...}."""
    return {c: name for c, (name, _) in concept_matches(run, source, threshold).items()}


def concept_matches(run: Any, source: str = "sae",
                    threshold: float = COVERAGE_F1) -> dict[int, tuple[str, float]]:
    """`concept_names` with each match's F1: concept -> ("variable=value", F1)."""
    if not run.has("groundtruth"):
        return {}
    data = run.groundtruth
    return concept_matches_of(data["sources"][source],
                              data.get("sentence_sources", {}).get(source), threshold)


def concept_names_of(tokens: dict[str, Any], sentences: dict[str, Any] | None = None,
                     threshold: float = COVERAGE_F1) -> dict[int, str]:
    """Names from `Recovery.summary()`s: token-level and (optional) sentence-level; where
    both name a concept, the match with the higher F1 wins."""
    return {c: name for c, (name, _) in
            concept_matches_of(tokens, sentences, threshold).items()}


def concept_matches_of(tokens: dict[str, Any], sentences: dict[str, Any] | None = None,
                       threshold: float = COVERAGE_F1) -> dict[int, tuple[str, float]]:
    """`concept_names_of` with each match's F1."""
    best: dict[int, tuple[str, float]] = {}
    for summary in (tokens, sentences or {}):
        for c, m in summary.get("concepts", {}).items():
            if m["f1"] >= threshold and m["f1"] > best.get(int(c), ("", -1.0))[1]:
                best[int(c)] = (f"{m['variable']}={m['value']}", float(m["f1"]))
    return dict(sorted(best.items()))
