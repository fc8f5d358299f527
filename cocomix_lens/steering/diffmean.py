"""Difference-of-means steering directions (DiffMean, as in AxBench) from ground truth.

    means = topic_means(run, ["blocks.1.hook_resid_post", "concept.hook_vector"])
    v = means.diffmean("blocks.1.hook_resid_post", "farming")   # [d_model] mean_T - mean_rest
    m = residual_method("blocks.1.hook_resid_post", v, "DiffMean farming", strength=2.0)
    run.student.generate("Anna was a nurse.", 30, steering=m)   # (method.residual_method)

`accumulate_means` reads a model's activations at the given hooks over token windows whose
every token carries a label (a topic index, -1 for none) and keeps per-label sums, so the
mean over tokens of topic T minus the mean over tokens of every other topic is one
subtraction per topic. A hook on the interleaved stream (blocks from `insert_layer` on) has
two rows per token (the token and its concept slot); both carry the token's label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

TOPIC_TOKENS = 65_536  # training tokens read for the per-topic means


@dataclass
class TopicMeans:
    """Per-label activation sums at some hooks. sums[hook]: float64 [n_labels, d];
    counts[hook]: int [n_labels] rows per label; norms[hook]: mean L2 norm of labelled rows."""

    labels: list[str]
    sums: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    norms: dict[str, float]

    def mean(self, hook: str, label: str) -> np.ndarray:
        i = self._index(label)
        return self.sums[self._hook(hook)][i] / max(int(self.counts[hook][i]), 1)

    def diffmean(self, hook: str, label: str) -> np.ndarray:
        """float32 [d]: mean over rows labelled `label` minus the mean over the other rows."""
        i, s, c = self._index(label), self.sums[self._hook(hook)], self.counts[hook]
        if c[i] == 0 or c.sum() == c[i]:
            raise ValueError(f"no rows labelled {label!r} (or none other) at {hook}; fix: "
                             "read more tokens (n_tokens)")
        rest = (s.sum(0) - s[i]) / (c.sum() - c[i])
        return (s[i] / c[i] - rest).astype(np.float32)

    def _index(self, label: str) -> int:
        if label not in self.labels:
            raise ValueError(f"unknown label {label!r}; choose one of {', '.join(self.labels)}")
        return self.labels.index(label)

    def _hook(self, hook: str) -> str:
        if hook not in self.sums:
            raise ValueError(f"no means at hook {hook!r}; computed at {sorted(self.sums)}")
        return hook

    def to_dict(self) -> dict[str, Any]:
        return {"labels": self.labels, "norms": self.norms,
                "counts": {h: c.tolist() for h, c in self.counts.items()},
                "sums": {h: s.tolist() for h, s in self.sums.items()}}

    @classmethod
    def from_dict(cls, blob: dict[str, Any]) -> TopicMeans:
        return cls(list(blob["labels"]),
                   {h: np.asarray(s, dtype=np.float64) for h, s in blob["sums"].items()},
                   {h: np.asarray(c, dtype=np.int64) for h, c in blob["counts"].items()},
                   {h: float(v) for h, v in blob["norms"].items()})


@torch.no_grad()
def accumulate_means(model: Any, windows: Tensor, labels: np.ndarray, names: Sequence[str],
                     hooks: Sequence[str], batch_size: int = 16) -> TopicMeans:
    """Per-label sums of `model`'s activations at `hooks` over token `windows` [n, pos];
    `labels` int [n, pos] is each token's label index into `names` (-1: not counted)."""
    labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    if labels.shape != windows.shape:
        raise ValueError(f"labels {tuple(labels.shape)} must match windows "
                         f"{tuple(windows.shape)}")
    k = len(names)
    sums: dict[str, Tensor] = {}
    counts: dict[str, Tensor] = {}
    norm_sum = {h: 0.0 for h in hooks}
    for b in range(0, len(windows), batch_size):
        x, lab = windows[b:b + batch_size], labels[b:b + batch_size]
        _, cache = model.run_with_cache(x.to(model.device), names_filter=list(hooks))
        for h in hooks:
            act = cache[h].float().cpu()  # [batch, pos or 2 * pos, d]
            rows = lab.repeat_interleave(act.shape[1] // lab.shape[1], dim=1).reshape(-1)
            act = act.reshape(-1, act.shape[-1])
            keep = rows >= 0
            onehot = torch.nn.functional.one_hot(rows[keep], k).double()  # [m, k]
            sums[h] = sums.get(h, 0) + onehot.T @ act[keep].double()
            counts[h] = counts.get(h, 0) + onehot.sum(0).long()
            norm_sum[h] += float(act[keep].norm(dim=-1).sum())
    return TopicMeans(list(names), {h: s.numpy() for h, s in sums.items()},
                      {h: c.numpy() for h, c in counts.items()},
                      {h: norm_sum[h] / max(int(counts[h].sum()), 1) for h in hooks})


def topic_means(run: Any, hooks: Sequence[str], split: str = "train",
                n_tokens: int = TOPIC_TOKENS, seq_len: int | None = None) -> TopicMeans:
    """`accumulate_means` of the run's student over the first `n_tokens` of `split`, in
    windows of `seq_len` (default: the student's n_ctx, at most 128), labelled by the
    ground truth's sentence topic of each token."""
    from cocomix_lens.data.truth import GroundTruth

    shards, model = run.shards, run.student
    truth = GroundTruth.open(run.require("shards"))
    seq_len = seq_len or min(model.cfg.n_ctx, 128)
    n = min(n_tokens, shards.n_tokens(split) - 1) // seq_len
    starts = np.arange(n) * seq_len
    windows, _ = shards.batch(split, starts, seq_len)
    topic = truth.column(split, "topic")[: n * seq_len].reshape(n, seq_len)
    return accumulate_means(model, windows, topic, truth.values("topic"), hooks)


def random_direction(like: np.ndarray, seed: int) -> np.ndarray:
    """A seeded Gaussian direction with the norm of `like` (the matched-norm control)."""
    r = np.random.default_rng(seed).standard_normal(like.shape)
    return (r / np.linalg.norm(r) * np.linalg.norm(like)).astype(np.float32)
