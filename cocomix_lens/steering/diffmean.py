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


class _Sums:
    """Running per-label sums of activations at some hooks (what a TopicMeans is made of)."""

    def __init__(self, names: Sequence[str], hooks: Sequence[str]):
        self.names, self.hooks = list(names), list(hooks)
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, Tensor] = {}
        self.norm_sum = {h: 0.0 for h in hooks}

    def add(self, cache: Any, lab: Tensor) -> None:
        """Add the activations of one batch (`cache[hook]`: [batch, pos or 2 * pos, d]),
        `lab` int [batch, pos] the label index of each token (-1: not counted)."""
        for h in self.hooks:
            act = cache[h].float().cpu()
            rows = lab.repeat_interleave(act.shape[1] // lab.shape[1], dim=1).reshape(-1)
            act = act.reshape(-1, act.shape[-1])
            keep = rows >= 0
            onehot = torch.nn.functional.one_hot(rows[keep], len(self.names)).double()  # [m, k]
            self.sums[h] = self.sums.get(h, 0) + onehot.T @ act[keep].double()
            self.counts[h] = self.counts.get(h, 0) + onehot.sum(0).long()
            self.norm_sum[h] += float(act[keep].norm(dim=-1).sum())

    def means(self) -> TopicMeans:
        return TopicMeans(self.names, {h: s.numpy() for h, s in self.sums.items()},
                          {h: c.numpy() for h, c in self.counts.items()},
                          {h: self.norm_sum[h] / max(int(self.counts[h].sum()), 1)
                           for h in self.hooks})


@torch.no_grad()
def accumulate_means(model: Any, windows: Tensor, labels: np.ndarray, names: Sequence[str],
                     hooks: Sequence[str], batch_size: int = 16) -> TopicMeans:
    """Per-label sums of `model`'s activations at `hooks` over token `windows` [n, pos];
    `labels` int [n, pos] is each token's label index into `names` (-1: not counted)."""
    labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    if labels.shape != windows.shape:
        raise ValueError(f"labels {tuple(labels.shape)} must match windows "
                         f"{tuple(windows.shape)}")
    sums = _Sums(names, hooks)
    for b in range(0, len(windows), batch_size):
        x = windows[b:b + batch_size]
        _, cache = model.run_with_cache(x.to(model.device), names_filter=list(hooks))
        sums.add(cache, labels[b:b + batch_size])
    return sums.means()


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


@torch.no_grad()
def latent_means(run: Any, latents: Sequence[int], hooks: Sequence[str],
                 split: str = "train", n_tokens: int = TOPIC_TOKENS, seq_len: int | None = None,
                 batch_size: int = 16) -> dict[int, TopicMeans]:
    """Per latent of the teacher's SAE, the student's activation sums at `hooks` over the
    first `n_tokens` of `split` (windows as `topic_means`), labelled by whether the latent is
    active at the token (TopicMeans labels [str(latent), "rest"]: `diffmean(hook,
    str(latent))` is the mean where it is active minus the mean where it is not). The
    student and the teacher read each window once for every latent: runs without ground
    truth (Wikipedia) get DiffMean directions from the SAE's own labels."""
    from cocomix_lens.concepts.extractor import ConceptExtractor

    shards, model = run.shards, run.student
    seq_len = seq_len or min(model.cfg.n_ctx, 128)
    n = min(n_tokens, shards.n_tokens(split) - 1) // seq_len
    windows, _ = shards.batch(split, np.arange(n) * seq_len, seq_len)
    ids = torch.as_tensor([int(c) for c in latents])
    sae = ConceptExtractor(run.teacher, run.sae, method="activation")
    sums = {int(c): _Sums([str(int(c)), "rest"], hooks) for c in ids}
    for b in range(0, len(windows), batch_size):
        x = windows[b:b + batch_size]
        active = sae.scores(x.to(model.device))[..., ids].cpu() > 0  # [batch, pos, k]
        _, cache = model.run_with_cache(x.to(model.device), names_filter=list(hooks))
        for j, c in enumerate(sums):
            sums[c].add(cache, (~active[..., j]).long())  # 0: active, 1: rest
    return {c: s.means() for c, s in sums.items()}


def random_direction(like: np.ndarray, seed: int) -> np.ndarray:
    """A seeded Gaussian direction with the norm of `like` (the matched-norm control)."""
    r = np.random.default_rng(seed).standard_normal(like.shape)
    return (r / np.linalg.norm(r) * np.linalg.norm(like)).astype(np.float32)
