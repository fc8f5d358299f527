"""Verdicts from paired differences over seeds (pure functions, tested on planted numbers).

A claim "A beats B" becomes per-seed differences d_s oriented so that d_s > 0 supports it
(e.g. val_loss(B) - val_loss(A)). With n seeds, mean m, std s and the 95 % t-interval
m ± t_{n-1} s / sqrt(n):
    holds           the interval lies above 0 and the mean reaches `min_effect`
    does not hold   the interval lies below `min_effect` (no effect of a size that matters,
                    or the opposite one)
    inconclusive    otherwise, and always with fewer than 2 seeds
The two-sided sign test's p-value is reported beside it (with 3 seeds it cannot go below
0.25, which is why the t-interval decides).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

HOLDS, FAILS, UNSURE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"
LEVEL = 0.95


@dataclass(frozen=True)
class Paired:
    """The test of one comparison over seeds."""

    verdict: str
    n: int
    mean: float
    std: float
    lo: float
    hi: float
    sign_p: float
    min_effect: float
    test: str = "paired t-interval over seeds (95 %), sign test beside it"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof 1; 0 for one value) of the finite values; NaN if none."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def t_interval(d: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """(lo, hi) of the mean of d (n >= 2)."""
    n = len(d)
    half = sps.t.ppf(0.5 + level / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
    return float(d.mean() - half), float(d.mean() + half)


def sign_test(d: np.ndarray) -> float:
    """Two-sided exact sign test p-value (zeros dropped); 1.0 when nothing is left."""
    pos, neg = int((d > 0).sum()), int((d < 0).sum())
    if pos + neg == 0:
        return 1.0
    return float(sps.binomtest(pos, pos + neg, 0.5).pvalue)


def paired(diffs: Sequence[float | None], min_effect: float = 0.0,
           level: float = LEVEL) -> Paired:
    """The verdict on per-seed differences `diffs` (positive supports the claim; None or
    NaN entries, e.g. a missing run, are dropped)."""
    d = np.asarray([x for x in diffs if x is not None and math.isfinite(x)], dtype=float)
    n = len(d)
    mean, std = mean_std(d.tolist())
    if n < 2:
        return Paired(UNSURE, n, mean, std, math.nan, math.nan, math.nan, min_effect)
    lo, hi = t_interval(d, level)
    verdict = (HOLDS if lo > 0 and mean >= min_effect else FAILS if hi < min_effect
               else UNSURE)
    return Paired(verdict, n, mean, std, lo, hi, sign_test(d), min_effect)


def all_of(verdicts: Sequence[str]) -> str:
    """A claim made of several comparisons: holds if all hold, does not hold if any does
    not, else inconclusive (not run if any was not run)."""
    if not verdicts or NOT_RUN in verdicts:
        return NOT_RUN
    if all(v == HOLDS for v in verdicts):
        return HOLDS
    return FAILS if FAILS in verdicts else UNSURE


def tokens_to_reach(tokens: Sequence[float], losses: Sequence[float],
                    target: float) -> float | None:
    """First token count at which the curve reaches `target` (linear between evaluations;
    the first evaluation counts as reached there); None if it never does."""
    for i, (t, loss) in enumerate(zip(tokens, losses)):
        if loss <= target:
            if i == 0:
                return float(t)
            t0, l0 = tokens[i - 1], losses[i - 1]
            return float(t0 + (t - t0) * (l0 - target) / (l0 - loss))
    return None


def share_saved(curve: dict[str, list[float]], target: float, budget: float) -> float | None:
    """1 - (tokens the curve needs to reach `target`) / budget; None if never reached."""
    t = tokens_to_reach(curve["tokens"], curve["val_loss"], target)
    return None if t is None else 1.0 - t / budget
