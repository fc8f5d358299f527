"""A sparse autoencoder (TopK by default) on the teacher's residual stream, trained with
SAE-Lens, and its quality.

The teacher's activations at one hook are collected once (the forward stops at the hook),
kept in memory, and fed to SAE-Lens's `SAETrainer` as a plain iterator of [batch, d_in]
tensors: its trainer decoupled from language-model plumbing, which is what works offline and
on CPU (the LM runner wants a HookedTransformer and a HF dataset). The result is saved with
`save_inference_model` (cfg.json + sae_weights.safetensors), so `SAE.load_from_disk` and
`cocomix_lens.concepts.load_sae` read it back.

Quality, on held-out validation activations:
    variance_explained  1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2
    l0                  mean number of active latents per token
    dead_latents        latents that never fire on the held-out activations
    ce_loss_recovered   (CE_zero - CE_sae) / (CE_zero - CE_clean) of the teacher's next-token
                        loss with the hook replaced by the reconstruction (1 = lossless)
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cocomix_lens.data.shards import gather_windows
from training.pipeline_config import SAESection

log = logging.getLogger(__name__)


def _k_sparse(cfg: SAESection) -> dict[str, Any]:
    return {"k": cfg.k, "aux_loss_coefficient": cfg.aux_loss}


def _matryoshka(cfg: SAESection) -> dict[str, Any]:
    return {**_k_sparse(cfg),
            "matryoshka_widths": matryoshka_widths(cfg.matryoshka_first, cfg.d_sae)}


def _jumprelu(cfg: SAESection) -> dict[str, Any]:
    # Gemma Scope 2's quadratic L0 penalty around a target of k active latents per token,
    # with thresholds learned per latent; Anthropic's pre-activation loss revives dead ones.
    return {"l0_coefficient": cfg.sparsity, "jumprelu_sparsity_loss_mode": "quadratic",
            "target_l0": float(cfg.k), "pre_act_loss_coefficient": cfg.pre_act_loss or None,
            "jumprelu_init_threshold": cfg.threshold_init}


def _l1(cfg: SAESection) -> dict[str, Any]:
    return {"l1_coefficient": cfg.sparsity}


ARCHITECTURES: dict[str, Callable[[SAESection], dict[str, Any]]] = {
    "topk": _k_sparse, "batchtopk": _k_sparse, "matryoshka_batchtopk": _matryoshka,
    "jumprelu": _jumprelu, "standard": _l1, "gated": _l1}
"""SAE-Lens training architectures -> their config's sparsity fields from an SAESection."""


def default_hook(n_layers: int) -> str:
    """Residual stream after the middle block, like the paper's blocks.5 of 12."""
    return f"blocks.{max(n_layers // 2 - 1, 0)}.hook_resid_post"


@torch.no_grad()
def collect_activations(teacher: nn.Module, tokens: np.ndarray, hook: str, n_tokens: int,
                        seq_len: int, seed: int, batch: int = 16) -> Tensor:
    """[n, d] activations at `hook` of random non-overlapping windows of a token array."""
    from cocomix_lens.concepts.capture import activation_at

    n_windows = len(tokens) // seq_len
    if n_windows == 0:
        raise ValueError(f"the split holds {len(tokens)} tokens, fewer than one window of "
                         f"{seq_len}; fix: use a larger corpus or a shorter seq_len")
    want = min(n_windows, -(-n_tokens // seq_len))
    order = np.random.default_rng(seed).permutation(n_windows)[:want]
    starts = np.sort(order) * seq_len
    out = []
    for i in range(0, len(starts), batch):
        x = torch.from_numpy(gather_windows(tokens, starts[i: i + batch], seq_len)
                             .astype(np.int64))
        out.append(activation_at(teacher, hook, x).reshape(-1, teacher.cfg.d_model).float())
    return torch.cat(out)[:n_tokens].cpu()


def shuffled_batches(acts: Tensor, batch_size: int, seed: int) -> Iterator[Tensor]:
    """Endless [batch_size, d] batches, a fresh permutation every epoch."""
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(len(acts), generator=g)
        for i in range(0, len(perm) - batch_size + 1, batch_size):
            yield acts[perm[i: i + batch_size]]


def train_sae(acts: Tensor, hook: str, cfg: SAESection, model_name: str = "cocomix-teacher",
              context_size: int | None = None, progress: bool = True) -> nn.Module:
    """An SAE of `cfg.architecture` trained by SAE-Lens's SAETrainer on activations [n, d_in];
    progress=False hides SAE-Lens's progress bar (it has no switch for it: its stderr is
    dropped)."""
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.saes.sae import SAEMetadata
    from sae_lens.training.sae_trainer import SAETrainer

    batch = min(cfg.batch_size, len(acts))
    steps = max(int(cfg.epochs * len(acts) / batch), 1)
    torch.manual_seed(cfg.seed)
    meta = SAEMetadata(model_name=model_name, hook_name=hook, context_size=context_size)
    sae_class, config_class = training_class(cfg.architecture)
    sae = sae_class(config_class(
        d_in=acts.shape[1], d_sae=cfg.d_sae, normalize_activations=cfg.normalize,
        metadata=meta, **ARCHITECTURES[cfg.architecture](cfg)))
    trainer_cfg = SAETrainerConfig(
        total_training_samples=steps * batch, train_batch_size_samples=batch, lr=cfg.lr,
        lr_end=cfg.lr / 10, lr_scheduler_name="cosineannealing",
        lr_warm_up_steps=max(steps // 20, 1), device="cpu",
        # a latent silent for a quarter of the run counts as dead (feeds the TopK aux loss)
        dead_feature_window=max(steps // 4, 1), feature_sampling_window=max(steps // 2, 1),
        n_batches_for_norm_estimate=min(20, max(len(acts) // batch, 1)),
        logger=LoggingConfig(log_to_wandb=False))
    trainer = SAETrainer(trainer_cfg, sae, shuffled_batches(acts, batch, cfg.seed))
    scale = 1.0
    if cfg.normalize == "expected_average_only_in":
        # SAE-Lens's own estimate (sqrt(d_in) / mean norm), over all the activations at once
        scale = acts.shape[1] ** 0.5 / float(acts.norm(dim=-1).mean())
        trainer.activation_scaler.scaling_factor = scale
    with torch.no_grad():  # start the decoder bias at the data mean (the OpenAI SAEs' b_pre
        sae.b_dec.copy_(acts.mean(0) * scale)  # init): TopK then codes deviations from it
    log.info("training a %s SAE (d_in %d, d_sae %d, k %d) on %d activations for %d steps",
             cfg.architecture, acts.shape[1], cfg.d_sae, cfg.k, len(acts), steps)
    with contextlib.nullcontext() if progress else contextlib.redirect_stderr(io.StringIO()):
        return trainer.fit().eval()


def matryoshka_widths(first: int, d_sae: int) -> list[int]:
    """Nested prefix widths first, 4 first, 16 first ... below d_sae, then d_sae."""
    widths = []
    while first < d_sae:
        widths.append(first)
        first *= 4
    return widths + [d_sae]


def training_class(architecture: str) -> tuple[type, type]:
    """(TrainingSAE class, its config class) of an SAE-Lens training architecture."""
    from sae_lens.registry import get_sae_training_class

    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown SAE architecture {architecture!r}; choose one of "
                         f"{', '.join(ARCHITECTURES)} (SAESection.architecture)")
    return get_sae_training_class(architecture)


def save_sae(sae: nn.Module, out: str | Path) -> Path:
    """Save in SAE-Lens inference format, atomically: a finished directory or none at all."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    sae.save_inference_model(tmp)
    old = out.with_name(out.name + ".old")
    if out.exists():
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out


@torch.no_grad()
def sae_quality(sae: nn.Module, acts: Tensor, batch: int = 4096) -> dict[str, float]:
    """variance_explained, mse, l0, dead_latents (and their fraction) on activations [n, d]."""
    sq_err = 0.0
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    l0 = 0.0
    for i in range(0, len(acts), batch):
        x = acts[i: i + batch]
        z = sae.encode(x)
        x_hat = sae.decode(z)
        sq_err += float((x - x_hat).pow(2).sum())
        active = z != 0
        l0 += float(active.sum())
        fired |= active.any(0).cpu()
    total_var = float((acts - acts.mean(0)).pow(2).sum())
    dead = int((~fired).sum())
    return {"variance_explained": 1.0 - sq_err / total_var, "mse": sq_err / acts.numel(),
            "l0": l0 / len(acts), "dead_latents": dead, "dead_fraction": dead / len(fired),
            "eval_tokens": len(acts)}


@torch.no_grad()
def ce_loss_recovered(teacher: nn.Module, sae: nn.Module, tokens: np.ndarray, hook: str,
                      seq_len: int, n_windows: int = 16) -> dict[str, float]:
    """Teacher next-token CE clean, with the SAE's reconstruction spliced in, and zero-ablated."""
    n = min(n_windows, (len(tokens) - 1) // seq_len)
    if n == 0:
        return {}
    xy = torch.from_numpy(gather_windows(tokens, np.arange(n) * seq_len, seq_len + 1)
                          .astype(np.int64))
    x, y = xy[:, :-1], xy[:, 1:]

    def ce(fn: Any = None) -> float:
        hooks = [(hook, fn)] if fn is not None else []
        logits = teacher.run_with_hooks(x, fwd_hooks=hooks)
        return float(F.cross_entropy(logits.flatten(0, 1), y.flatten()))

    clean = ce()
    spliced = ce(lambda act, hook: sae.decode(sae.encode(act)))
    zero = ce(lambda act, hook: torch.zeros_like(act))
    recovered = (zero - spliced) / (zero - clean) if zero != clean else float("nan")
    return {"ce_clean": clean, "ce_sae": spliced, "ce_zero_ablation": zero,
            "ce_loss_recovered": recovered}
