"""Validation metrics: loss and perplexity, and how well the concept head predicts the labels.

Concept metrics, over every position with labels (k labels per position, C concepts):
    concept_ce        mean over positions and labels of CE(concept_logits, label)
    concept_top1      P(argmax of the concept logits is one of the k labels); chance ~ k / C
    concept_top4      mean |top-4 predicted ∩ labels| / min(4, k): recall of the labels among
                      the 4 highest logits; chance ~ 4 / C
    concept_distinct  number of distinct argmax concepts over the evaluated positions
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from training.distributed import DistEnv, all_reduce_max, all_reduce_sum
from training.objectives import Objective, concept_nll, forward

TOPK = 4


def concept_sums(concept_logits: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """Sufficient statistics of the concept metrics for one batch (summable across batches).

    concept_logits [batch, pos, C]; labels [batch, pos, k] int64 (negative = missing).
    """
    z = concept_logits.float()
    nll, valid = concept_nll(z, labels)
    safe = labels.clamp(min=0)
    has = valid.any(-1)  # positions with at least one label
    top = z.topk(min(TOPK, z.shape[-1]), dim=-1).indices  # [batch, pos, 4]
    # hit[b, t, i, j]: predicted top-i equals label j
    hit = (top[..., :, None] == safe[..., None, :]) & valid[..., None, :]
    top1 = hit[..., 0, :].any(-1)
    overlap = hit.any(-2).sum(-1).float() / valid.sum(-1).clamp(max=TOPK).clamp(min=1)
    predicted = torch.zeros(z.shape[-1], dtype=torch.bool, device=z.device)
    predicted[top[..., 0][has]] = True
    return {"ce_sum": (nll * valid).sum(), "n_labels": valid.sum().float(),
            "top1_sum": (top1 & has).sum().float(), "top4_sum": (overlap * has).sum(),
            "n_pos": has.sum().float(), "predicted": predicted}


@torch.no_grad()
def evaluate(model: Callable, hooks_model: torch.nn.Module, objective: Objective, shards: Any,
             split: str, starts: np.ndarray, seq_len: int, batch_size: int,
             labels: Any | None, env: DistEnv, autocast: Callable) -> dict[str, float]:
    """Metrics over the windows `starts` (this rank evaluates starts[rank::world_size])."""
    was_training = hooks_model.training
    hooks_model.eval()
    concepts = hooks_model.cfg.has_concepts and labels is not None
    sums: dict[str, Tensor] = {}
    mine = starts[env.rank::env.world_size]
    for i in range(0, len(mine), batch_size):
        part = mine[i: i + batch_size]
        x, y = (t.to(env.device) for t in shards.batch(split, part, seq_len))
        with autocast():
            logits, z = forward(objective, model, x, hooks_model, concepts)
        ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten(),
                                               reduction="sum")
        batch_sums = {"loss_sum": ce, "n_tok": torch.tensor(float(y.numel()), device=ce.device)}
        if concepts:
            batch_sums.update(concept_sums(z, labels.get(split, part, x, y)))
        for k, v in batch_sums.items():
            sums[k] = v if k not in sums else (sums[k] | v if k == "predicted" else sums[k] + v)
    hooks_model.train(was_training)
    return _finish(sums, env, concepts, hooks_model)


def _finish(sums: dict[str, Tensor], env: DistEnv, concepts: bool,
            model: torch.nn.Module) -> dict[str, float]:
    dev = env.device
    keys = ["loss_sum", "n_tok"] + (["ce_sum", "n_labels", "top1_sum", "top4_sum", "n_pos"]
                                    if concepts else [])
    vec = torch.stack([torch.as_tensor(sums.get(k, 0.0), dtype=torch.float64, device=dev)
                       for k in keys])
    tot = dict(zip(keys, all_reduce_sum(vec, env).tolist()))
    loss = tot["loss_sum"] / max(tot["n_tok"], 1.0)
    out = {"val_loss": loss, "val_ppl": math.exp(min(loss, 50.0))}
    if concepts:
        n_c = model.cfg.n_concepts
        pred = sums.get("predicted", torch.zeros(n_c, dtype=torch.bool, device=dev))
        pred = all_reduce_max(pred.to(torch.int32), env)
        out.update(concept_ce=tot["ce_sum"] / max(tot["n_labels"], 1.0),
                   concept_top1=tot["top1_sum"] / max(tot["n_pos"], 1.0),
                   concept_top4=tot["top4_sum"] / max(tot["n_pos"], 1.0),
                   concept_distinct=float(pred.sum().item()))
    return out
