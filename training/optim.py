"""AdamW with decay on weight matrices only, and the warmup + cosine learning-rate schedule."""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from training.adamw import AdamW
from training.config import OptimSection

# Leaf names of embedding-like matrices (TransformerLens vocabulary): never decayed, as in the
# paper's recipe; an untied W_U is the unembedding and is treated the same way.
EMBEDDING_NAMES = ("W_E", "W_pos", "W_U")


def is_decayed(name: str, param: nn.Parameter, module: nn.Module | None = None) -> bool:
    """True for weight matrices: ndim >= 2 and not an embedding (no norms, biases, embeddings)."""
    if param.ndim < 2 or isinstance(module, nn.Embedding):
        return False
    return name.rsplit(".", 1)[-1] not in EMBEDDING_NAMES


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: decayed weight matrices, then everything else (each parameter once)."""
    owners = {id(p): m for m in model.modules() for p in m.parameters(recurse=False)}
    decay, no_decay, seen = [], [], set()
    for name, p in model.named_parameters():  # shared (tied) parameters appear once
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if is_decayed(name, p, owners.get(id(p))) else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def warmup_steps(cfg: OptimSection) -> int:
    """The configured warmup, or ceil(max_steps / 300) (the paper's ~1/300 of training)."""
    if cfg.warmup_steps is not None:
        return cfg.warmup_steps
    return math.ceil(schedule_steps(cfg) / 300)


def schedule_steps(cfg: OptimSection) -> int:
    """The steps the schedule spans: `schedule_steps`, else `max_steps`."""
    return cfg.schedule_steps or cfg.max_steps


def lr_factor(step: int, *, warmup: int, max_steps: int, min_ratio: float) -> float:
    """Multiplier of the peak lr at optimizer step `step` (0-based).

    Linear warmup over `warmup` steps (step 0 already uses 1/warmup), then a cosine from 1 to
    `min_ratio` reached at `max_steps`, flat afterwards.
    """
    if step < warmup:
        return (step + 1) / warmup
    span = max(1, max_steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(model: nn.Module, cfg: OptimSection,
                    fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW over `param_groups(model)`; `fused` is passed through on GPU for speed. On CPU
    it is torch's AdamW run in cache-sized chunks (training/adamw.py): the same bits."""
    kwargs = {"fused": fused} if fused else {}
    return AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                 betas=tuple(cfg.betas), eps=cfg.eps, **kwargs)


def build_scheduler(optimizer: torch.optim.Optimizer,
                    cfg: OptimSection) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR over `lr_factor`; its state_dict is plain numbers (JSON-serialisable)."""
    fn = functools.partial(lr_factor, warmup=warmup_steps(cfg), max_steps=schedule_steps(cfg),
                           min_ratio=cfg.min_lr_ratio)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
