"""Explanations of concepts without a language model, and their detection score.

A concept's contexts are the sentences (units) where its SAE latent fires on some token. Its
keywords are the word stems (catalogue.words: word forms folded) whose presence most separates
those sentences from the rest, on the first half of the scanned units:
    keyword score(c, s) = P(s in unit | c fires in it) - P(s in unit | c does not)
A keyword needs MIN_SUPPORT such units and MIN_LIFT times its rate elsewhere; stems present in
over MAX_DF of all units ("the") explain nothing and are skipped.

    explanation = "<head> — <keywords>; promotes <tokens>; <variable> = <value>, F1 <f1>"
    head        = the ground-truth value it tracks best (runs with known latents, F1 >= 0.5),
                  else its top keyword

Detection score, the way auto-interp scores explanations: on the held-out second half of the
units, predict "the concept fires in this sentence" by how many of the explanation's words
(head and keywords, folded) the sentence holds; the score is that predictor's AUROC
(0.5 = chance, 1 = the words find exactly the sentences where the concept fires).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from cocomix_lens.catalogue.words import fold_text, token_stems

# Measured on the world demo run (benchmarks/concept_search_world.py's run, 400 live
# concepts): mean detection AUROC 0.706 with these; 0.725 with MAX_DF 0.5 (then "the" and
# "in" head most topic explanations), 0.702 with 3 keywords, 0.692 with MIN_LIFT 4.
N_KEYWORDS = 5
N_PROMOTED = 2
MIN_SUPPORT = 2  # fit units holding the stem where the concept fires
MAX_DF = 0.25
MIN_LIFT = 2.0  # a keyword is at least this much more frequent where the concept fires
TRUTH_HEAD_F1 = 0.5  # a ground-truth value names the head from this F1 on


MAX_UNIT = 32  # tokens: a longer sentence (or text without punctuation) is cut into pieces


def text_units(tokens: np.ndarray, ends: np.ndarray, max_len: int = MAX_UNIT) -> np.ndarray:
    """int [N] unit id per token: sentences (a token with ends[token] closes one), each cut
    into pieces of at most `max_len` tokens."""
    from cocomix_lens.groundtruth import unit_ids

    sentence = unit_ids(ends[tokens])
    start = np.flatnonzero(np.r_[True, np.diff(sentence) != 0])  # first token of each
    offset = np.arange(len(tokens)) - start[sentence]
    piece = offset // max_len
    new = np.r_[True, (np.diff(sentence) != 0) | (np.diff(piece) != 0)] if len(tokens) \
        else np.zeros(0, dtype=bool)
    return np.cumsum(new) - 1


@dataclass(frozen=True)
class Units:
    """Scanned tokens grouped into units: tokens int [N], unit int [N] (non-decreasing)."""

    tokens: np.ndarray
    unit: np.ndarray

    @property
    def n(self) -> int:
        return int(self.unit[-1]) + 1 if len(self.unit) else 0


def presence(unit: np.ndarray, column: np.ndarray, n_units: int, n_cols: int) -> torch.Tensor:
    """float32 [n_units, n_cols]: 1 where some token of the unit has that column id."""
    keep = column >= 0
    out = torch.zeros(n_units, n_cols)
    out[torch.as_tensor(unit[keep]), torch.as_tensor(column[keep])] = 1.0
    return out


def explain(units: Units, positions: np.ndarray, concepts: np.ndarray, n_concepts: int,
            vocab: list[str], promoted: list[list[str]] | None = None,
            truth: dict[int, tuple[str, float]] | None = None) -> pd.DataFrame:
    """Columns keywords, explanation, head, detection (AUROC), detection_units, per concept.

    positions, concepts: int [M] where the concept's latent fires (positions index
    `units.tokens`); `promoted[c]` its promoted tokens, best first; `truth[c]` its best
    ground-truth match ("topic=farming", F1)."""
    stem_of, stems = token_stems(vocab)
    n_u = units.n
    words = presence(units.unit, stem_of[units.tokens], n_u, len(stems))  # [U, S]
    fires = presence(units.unit[positions], concepts, n_u, n_concepts)  # [U, C]
    fit = torch.arange(n_u) < n_u // 2
    common = words.mean(0) > MAX_DF
    keywords = _keywords(words[fit], fires[fit], common)  # [C, K] stem ids, -1 = none
    surface = _surface(units.tokens, stem_of, len(stems), vocab)
    truth = truth or {}
    rows = []
    for c in range(n_concepts):
        kw = [surface[s] for s in keywords[c] if s >= 0]
        rows.append(_phrase(kw, (promoted or [[]] * n_concepts)[c], truth.get(c)))
    table = pd.DataFrame(rows, columns=["head", "keywords", "explanation"])
    idx = {s: i for i, s in enumerate(stems)}
    said = torch.zeros(len(stems), n_concepts)  # [S, C] the explanation's stems
    for c, (head, kw, _) in enumerate(rows):
        for w in fold_text(" ".join([head, *kw])):
            if w in idx:
                said[idx[w], c] = 1.0
    held = ~fit
    auroc = detection_auroc(words[held] @ said, fires[held] > 0)
    table["detection"] = auroc
    table["detection_units"] = (fires[held] > 0).sum(0).numpy()
    table.index.name = "concept"
    return table


def _keywords(words: torch.Tensor, fires: torch.Tensor, common: torch.Tensor) -> np.ndarray:
    """int [C, N_KEYWORDS] best stems by keyword score (-1 where fewer qualify)."""
    n_fire = fires.sum(0)  # [C]
    n_rest = len(fires) - n_fire
    co = fires.T @ words  # [C, S] units where both
    df = words.sum(0)  # [S]
    p1 = co / n_fire.clamp(min=1)[:, None]
    p0 = (df[None, :] - co) / n_rest.clamp(min=1)[:, None]
    score = p1 - p0
    score[:, common] = -1.0
    score[(co < MIN_SUPPORT) | (p1 < MIN_LIFT * p0)] = -1.0
    top = score.topk(min(N_KEYWORDS, score.shape[1]), dim=1)
    return torch.where(top.values > 0, top.indices, -1).numpy()


def _surface(tokens: np.ndarray, stem_of: np.ndarray, n_stems: int,
             vocab: list[str]) -> list[str]:
    """Each stem's most frequent token in the scanned text, stripped and case-folded."""
    ids, counts = np.unique(tokens, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    out = [""] * n_stems
    for t in ids[order]:
        s = stem_of[t]
        if s >= 0 and not out[s]:
            out[s] = vocab[t].strip().casefold()
    return out


def _phrase(keywords: list[str], promoted: list[str],
            truth: tuple[str, float] | None) -> tuple[str, list[str], str]:
    """(head, keywords, the explanation line)."""
    known = truth is not None and truth[1] >= TRUTH_HEAD_F1
    head = truth[0].split("=", 1)[1] if known else (keywords[0] if keywords else "")
    rest = [w for w in keywords if w != head]
    shown = [str(t).strip() for t in promoted if any(ch.isalpha() for ch in str(t))]
    parts = [f"{head} — {', '.join(rest)}" if rest else head]
    if shown:
        parts.append(f"promotes {', '.join(shown[:N_PROMOTED])}")
    if truth is not None:
        var, value = truth[0].split("=", 1)
        parts.append(f"{var} = {value}, F1 {truth[1]:.2f}")
    return head, keywords, "; ".join(p for p in parts if p)


def detection_auroc(score: torch.Tensor, active: torch.Tensor) -> np.ndarray:
    """float [C]: AUROC of score [U, C] for active bool [U, C], ties counted half; NaN for a
    column without both classes. Mann-Whitney over average ranks."""
    n_pos = active.sum(0).double()
    n_neg = len(active) - n_pos
    ranks = _average_ranks(score.double())
    u = (ranks * active).sum(0) - n_pos * (n_pos + 1) / 2
    auc = u / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = float("nan")
    return auc.numpy()


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks of each column of x [U, C], tied values sharing their average rank."""
    order = x.argsort(dim=0, stable=True)
    sorted_x = x.gather(0, order)
    n = len(x)
    pos = torch.arange(1, n + 1, dtype=torch.float64)[:, None].expand_as(x)
    # a tie group is a run of equal sorted values: give every member the mean of its positions
    new = torch.ones_like(sorted_x, dtype=torch.bool)
    new[1:] = sorted_x[1:] != sorted_x[:-1]
    group = new.long().cumsum(0) - 1  # [U, C] group index within the column
    sums = torch.zeros_like(x).scatter_add_(0, group, pos)
    counts = torch.zeros_like(x).scatter_add_(0, group, torch.ones_like(x))
    avg = (sums / counts.clamp(min=1)).gather(0, group)
    return torch.empty_like(x).scatter_(0, order, avg)
