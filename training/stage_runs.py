"""Run configs of the pipeline's trainer runs: the concept teacher and the two students.

The teacher is our own CoCoMixModel with mix_mode "none" (a plain GPT-2), wider than the
student, trained with objective ntp by `training.trainer.train`; its final weights land in
`<run>/model` (save_pretrained), which `cocomix_lens.concepts.load_teacher` reads.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cocomix_lens.config import MIXING_FIELDS
from cocomix_lens.rundir import LAYOUT
from training.config import RunConfig
from training.pipeline_config import PipelineConfig

log = logging.getLogger(__name__)

# Trainer summary fields the pipeline keeps for summary.json.
RUN_FIELDS = ("objective", "steps", "tokens", "wall_s", "tokens_per_s", "n_params", "val_loss",
              "val_ppl", "concept_ce", "concept_top1", "concept_top4", "concept_distinct")


def base_run_config(p: PipelineConfig, data_dir: str | Path, objective: str, preset: str,
                    overrides: dict[str, Any], max_steps: int, lr: float) -> RunConfig:
    """A RunConfig sharing the pipeline's seed, windows, evaluation and device."""
    cfg = RunConfig(objective=objective, seed=p.seed)
    cfg.model.preset, cfg.model.overrides = preset, dict(overrides)
    cfg.optim.max_steps, cfg.optim.lr = max_steps, lr
    # The paper's 1/300 warmup is one step in a run this short; 5 % keeps early steps sane.
    cfg.optim.warmup_steps = max(max_steps // 20, 1)
    cfg.data.dir, cfg.data.seq_len, cfg.data.batch_size = str(data_dir), p.seq_len, p.batch_size
    cfg.logging.eval_every, cfg.logging.eval_batches = p.eval_every, p.eval_batches
    cfg.logging.progress = p.progress
    # A few checkpoints per run so an interrupted stage resumes close to where it stopped.
    cfg.checkpoint.every = max(max_steps // 4, 1)
    cfg.checkpoint.keep_last, cfg.checkpoint.keep_best = 2, False
    cfg.system.device, cfg.system.threads = p.device, p.threads
    return cfg


def teacher_run_config(p: PipelineConfig, data_dir: str | Path) -> RunConfig:
    t = p.teacher
    shape = {"d_model": t.d_model, "n_layers": t.n_layers, "n_heads": t.n_heads,
             "mix_mode": "none", "n_ctx": max(p.seq_len, 64)}
    return base_run_config(p, data_dir, "ntp", t.preset, shape, t.max_steps, t.lr)


def student_run_config(p: PipelineConfig, data_dir: str | Path, labels_dir: str | Path,
                       objective: str) -> RunConfig:
    """A student of `objective`: same seed, windows (the label cache's, so all draw the very
    same ones) and token budget; plain-GPT-2 objectives (ntp, kd) get the width-matched NTP
    preset and drop the concept-head fields."""
    from training.objectives import get_objective

    s = p.student
    plain = get_objective(objective).mix_mode == "none"
    preset = (s.ntp_preset or s.preset) if plain else s.preset
    overrides = dict(s.overrides)
    if plain:
        overrides = {k: v for k, v in overrides.items() if k not in MIXING_FIELDS}
    cfg = base_run_config(p, data_dir, objective, preset, overrides, s.max_steps, s.lr)
    cfg.concept.k_attr = p.labels.k
    cfg.concept.labels = str(labels_dir)
    cfg.concept.lam = s.lam
    return cfg


def train_teacher(p: PipelineConfig, shards: Any, out_dir: Path) -> dict[str, Any]:
    """Train (or resume) the teacher into out_dir; returns the trainer's summary fields."""
    from training.trainer import train

    summary = train(teacher_run_config(p, shards.root), data=shards, out_dir=out_dir,
                    resume=True)
    return run_fields(summary, out_dir)


def run_fields(summary: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The summary fields the pipeline reports, plus where the final model lives."""
    out = {k: summary[k] for k in RUN_FIELDS if k in summary}
    out["model_dir"] = str(out_dir / LAYOUT.train.model)
    out["model_config"] = summary.get("model_config")
    return out
