"""How well concepts recover known latent variables: F1 of every (concept, variable value)
pair over tokens, the best concept per value, coverage, and each concept's best value.

A concept "fires" on a token when it is among the token's active set: an SAE latent among the
top-k active latents, a label among the teacher's k attribution labels, or a concept among a
student's top-k predicted concept logits. A value holds on a token per the ground truth
(`cocomix_lens.data.truth`). For concept c and value v over N tokens:

    F1(c, v) = 2 |fires(c) & holds(v)| / (|fires(c)| + |holds(v)|)

    rec = Recovery.from_active(active, {"topic": (topic_col, topic_values), ...}, n_concepts)
    rec.coverage()              # {"topic": 0.86, ...}: share of values with a concept of F1 >= 0.8
    rec.best_match(17)          # ("topic", "cooking", 0.93)
    concept_names("runs/demo")  # {17: "topic=cooking", ...} from a world run's groundtruth.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
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
            f1[var], held[var] = table.f1(), table.held
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


GROUNDTRUTH_FILE = "groundtruth.json"
"""Written into a pipeline run directory by its `groundtruth` stage (world corpora only):
{"tokens", "sources": {"sae" | "labels" | "student": Recovery.summary()}, "samples"}."""


def concept_names(run_dir: str | Path, source: str = "sae",
                  threshold: float = COVERAGE_F1) -> dict[int, str]:
    """Concept -> "variable=value" for the concepts of `source` whose best-matching value
    has F1 >= threshold, read from a run's groundtruth.json; {} when the run has none (its
    corpus has no known latents)."""
    path = Path(run_dir) / GROUNDTRUTH_FILE
    if not path.is_file():
        return {}
    summary = json.loads(path.read_text(encoding="utf-8"))["sources"][source]
    return {int(c): f"{m['variable']}={m['value']}" for c, m in summary["concepts"].items()
            if m["f1"] >= threshold}
