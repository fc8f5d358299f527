"""Seeded bootstrap confidence intervals over samples (percentile method).

A steering evaluation scores each generated sample once per condition with the same prompts
and seeds, so conditions are paired sample by sample: `bootstrap_diff` resamples those pairs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A mean over samples and its bootstrap confidence interval [lo, hi]."""

    mean: float
    lo: float
    hi: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "lo": self.lo, "hi": self.hi, "n": self.n}

    @classmethod
    def from_dict(cls, blob: Mapping[str, float]) -> Estimate:
        """From `to_dict` (a null, as strict JSON writes NaN, reads as NaN)."""
        num = lambda k: float("nan") if blob.get(k) is None else float(blob[k])  # noqa: E731
        return cls(num("mean"), num("lo"), num("hi"), int(blob.get("n") or 0))

    def above(self, other: Estimate) -> bool:
        """Whether this interval lies entirely above `other`'s."""
        return self.lo > other.hi

    def format(self, log_scale: bool = False, ratio: bool = False,
               decimals: int | None = None) -> str:
        """'mean [lo, hi]' (the one estimate formatter). A log-scale metric (perplexity, kept
        as a log) shows as exp; a difference of logs as a ratio 'x1.2 [..]'. `decimals`:
        fixed decimals instead of 3 significant digits."""
        f = lambda x: format_number(x, log_scale, decimals)  # noqa: E731
        mark = "x" if log_scale and ratio else ""
        return f"{mark}{f(self.mean)} [{f(self.lo)}, {f(self.hi)}]"


def format_number(x: float | None, log_scale: bool = False, decimals: int | None = None) -> str:
    """3 significant digits (thousands grouped), or `decimals` fixed ones; exp(x) for a
    log-scale value; "nan" for None or a non-finite value."""
    if x is None or not math.isfinite(x):
        return "nan"
    x = math.exp(x) if log_scale else x
    if decimals is not None:
        return f"{x:.{decimals}f}"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def _indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, n] resampling indices, the same for every call with the same (n, n_boot, seed),
    so paired metrics are resampled identically."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap(values: np.ndarray, n_boot: int = 2000, seed: int = 0,
              level: float = 0.95) -> Estimate:
    """Mean of `values` [n] with a percentile bootstrap interval at `level`."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"bootstrap needs a non-empty 1-d array of per-sample values, "
                         f"got shape {values.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level={level} must be in (0, 1), e.g. 0.95")
    if values.size == 1:
        v = float(values[0])
        return Estimate(v, v, v, 1)
    means = values[_indices(values.size, n_boot, seed)].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return Estimate(float(values.mean()), float(lo), float(hi), int(values.size))


def bootstrap_diff(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0,
                   level: float = 0.95) -> Estimate:
    """Mean of the paired differences a - b ([n] each, sample i of a paired with i of b)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples need equal shapes, got {a.shape} and {b.shape}")
    return bootstrap(a - b, n_boot, seed, level)
