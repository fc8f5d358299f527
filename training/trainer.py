"""The training loop: `train(cfg, model=None, data=..., labels=..., out_dir=...) -> summary`.

One code path for a single process and for `torchrun` (DDP, or FSDP with system.fsdp).
data.batch_size windows make one optimizer step, split over ranks and optim.grad_accum
micro-batches; every rank draws the same global batch from WindowSampler and keeps its
slice, so the loss does not depend on how the batch is split. On CPU (fp32) a run resumed from
a checkpoint ends bitwise identical to an uninterrupted one.

Writes into out_dir: config.yaml, metrics.jsonl, checkpoints/, model/ (save_pretrained of the
final weights) and summary.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cocomix_lens import CoCoMixModel
from cocomix_lens.bounds import check_fields
from cocomix_lens.data.files import atomic_write_json, atomic_write_text
from cocomix_lens.data.identity import check_identity
from cocomix_lens.data.lock import DirLock
from cocomix_lens.progress import step_bar
from cocomix_lens.rundir import LAYOUT
from training import distributed as D
from training.checkpoint import Checkpoint, CheckpointManager, restore_rng
from training.config import RunConfig, dump_yaml
from training.evaluate import evaluate
from training.label_sources import as_label_source
from training.metrics_log import MetricsLog
from training.objectives import Batch, LossWeights, get_objective
from training.optim import build_optimizer, build_scheduler
from training.sampler import WindowSampler, sequential_starts
from training.threads import use_threads

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The loss (or gradient norm) became NaN or inf; the last good checkpoint is kept."""


def train(cfg: RunConfig, model: CoCoMixModel | None = None, *, data: Any = None,
          labels: Any = None, teacher: nn.Module | None = None,
          out_dir: str | Path | None = None, resume: bool = False,
          force: bool = False) -> dict[str, Any]:
    """Train `model` (default: built from cfg.model) and return the run summary.

    data: a TokenShards or its directory (default cfg.data.dir). labels: a LabelCache, a
    ConceptExtractor or a training.label_sources.LabelSource (needed by concept objectives).
    teacher: frozen mix_mode none model for kd (default: loaded from cfg.concept.teacher).
    resume: continue from out_dir/checkpoints if it holds one (else start fresh).
    force: start afresh in a used out_dir, deleting its checkpoints and metrics (without it
    a used out_dir needs `resume`).
    """
    if out_dir is None:
        raise ValueError("train() needs out_dir: the run directory to write into")
    check_run_config(cfg)
    env = D.DistEnv.setup(cfg.system.device)
    trainer = None
    try:
        trainer = Trainer(cfg, Path(out_dir), env, model, data, labels, teacher)
        return trainer.fit(resume, force)
    finally:
        # Free the DDP wrapper while the process group is still alive: freed after
        # destroy_process_group (when this frame exits), a rank could block in gloo for good
        # (a 2-process CI run hung there, one rank idle in the worker after train()).
        del trainer
        gc.collect()
        env.teardown()


class Trainer:
    def __init__(self, cfg: RunConfig, out_dir: Path, env: D.DistEnv, model: Any, data: Any,
                 labels: Any, teacher: Any):
        self.cfg, self.out, self.env = cfg, out_dir, env
        self.objective = get_objective(cfg.objective)
        self.shards = open_shards(data if data is not None else cfg.data.dir)
        self.labels = as_label_source(labels, cfg.concept.k_attr)
        if hasattr(self.labels, "to"):
            self.labels.to(env.device)
        self.micro = micro_batch(cfg, env.world_size)
        seed_everything(cfg.seed)  # model init is part of the seeded run
        self.model = (model or self._build_model()).to(env.device)
        self._check_model()
        self.weights = LossWeights(cfg.concept.lam, cfg.concept.kd_weight,
                                   self._teacher(teacher))
        self.ddp = D.wrap_model(self.model, env, cfg.system.fsdp)  # the model itself if alone
        compile_it = cfg.system.compile and env.device.type == "cuda"
        self.wrapped = torch.compile(self.ddp) if compile_it else self.ddp
        fused = env.device.type == "cuda" and not D.is_sharded(self.model)
        self.optimizer = build_optimizer(self.model, cfg.optim, fused=fused or None)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim)
        align = self.labels.align if self.labels is not None else 1
        # One draw per optimizer step (this rank's slice of the global batch), then split into
        # micro-batches: the data of a step depends on neither world_size nor grad_accum.
        self.sampler = WindowSampler(self.shards.n_tokens("train"), cfg.data.seq_len,
                                     self.micro * cfg.optim.grad_accum, cfg.seed, env.rank,
                                     env.world_size, align)
        n_eval = cfg.logging.eval_batches * cfg.data.batch_size
        starts = sequential_starts(self.shards.n_tokens(cfg.data.val_split), cfg.data.seq_len,
                                   limit=n_eval)
        # Every rank must run the same number of forwards (FSDP gathers weights in each).
        self.eval_starts = starts[: len(starts) - len(starts) % env.world_size]
        self.ckpt = CheckpointManager(out_dir / LAYOUT.train.checkpoints, cfg.checkpoint.keep_last,
                                      cfg.checkpoint.keep_best)
        self.metrics = MetricsLog(out_dir, cfg.logging, env.is_main, cfg.to_dict())
        self.step, self.tokens, self.last_eval, self.train_s = 0, 0, {}, 0.0

    # ---- setup ------------------------------------------------------------------------------
    def _build_model(self) -> CoCoMixModel:
        defaults = {"d_vocab": self.shards.vocab_size, "mix_mode": self.objective.mix_mode}
        if self.labels is not None and self.labels.n_concepts:
            defaults["n_concepts"] = self.labels.n_concepts
        return CoCoMixModel(self.cfg.model_config(**defaults))

    def _check_model(self) -> None:
        mc, obj, cfg = self.model.cfg, self.objective, self.cfg
        if mc.mix_mode != obj.mix_mode:
            raise ValueError(f"objective {obj.name!r} trains a mix_mode {obj.mix_mode!r} model "
                             f"but the model has mix_mode {mc.mix_mode!r}; drop the "
                             "--model.mix_mode override or pass a matching model")
        if mc.d_vocab < self.shards.vocab_size:
            raise ValueError(f"model d_vocab={mc.d_vocab} < the shards' vocab_size="
                             f"{self.shards.vocab_size}; pass --model.d_vocab "
                             f"{self.shards.vocab_size}")
        if cfg.data.seq_len > mc.n_ctx:
            raise ValueError(f"data.seq_len={cfg.data.seq_len} exceeds the model's n_ctx="
                             f"{mc.n_ctx}; lower --data.seq_len or raise --model.n_ctx")
        if obj.needs_labels and self.labels is None:
            raise ValueError(f"objective {obj.name!r} needs concept labels: pass --labels DIR "
                             "or --teacher DIR --sae DIR")
        n = self.labels.n_concepts if self.labels is not None else None
        if mc.has_concepts and n and n != mc.n_concepts:
            raise ValueError(f"the labels index {n} concepts but the model has n_concepts="
                             f"{mc.n_concepts}; pass --model.n_concepts {n}")

    def _teacher(self, teacher: Any) -> nn.Module | None:
        if not self.objective.needs_teacher:
            return None
        if teacher is None and self.cfg.concept.teacher:
            # The labelling teachers' registry: a checkpoint directory or a TransformerLens
            # name such as gpt2.
            from cocomix_lens.concepts.teacher import load_teacher_model

            teacher = load_teacher_model(self.cfg.concept.teacher)
        if teacher is None:
            raise ValueError("objective 'kd' needs a teacher: pass --teacher DIR")
        if teacher.cfg.d_vocab != self.model.cfg.d_vocab:
            raise ValueError(f"teacher d_vocab={teacher.cfg.d_vocab} differs from the student's "
                             f"{self.model.cfg.d_vocab}; KD needs one tokenizer for both")
        if isinstance(teacher, CoCoMixModel):
            teacher.check_tokenizer(self.shards.tokenizer)  # same vocab size is not enough
        return teacher.to(self.env.device).eval().requires_grad_(False)

    def autocast(self):
        if self.env.device.type == "cuda" and self.cfg.system.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---- checkpoints -----------------------------------------------------------------------
    def _claim_dir(self, resume: bool, force: bool) -> None:
        """Refuse to mix two runs in one directory: a used one needs resume or force."""
        self.ckpt.check_contained(self.out)
        used = self.ckpt.used() or self.metrics.path.is_file() or (
            self.out / LAYOUT.train.summary).is_file()
        if not used or resume:
            return
        if not force:
            raise FileExistsError(f"{self.out} holds a previous run; fix: pass --resume to "
                                  "continue it, or --force to start over (deletes its "
                                  "checkpoints and metrics), or choose another --out")
        log.warning("--force: deleting the previous run's checkpoints and metrics in %s",
                    self.out)
        self.ckpt.reset()
        for name in (LAYOUT.train.metrics, LAYOUT.train.summary):
            (self.out / name).unlink(missing_ok=True)

    def _resume(self) -> None:
        self.ckpt.clean_temporaries()
        if self.ckpt.latest() is None:
            log.info("no complete checkpoint in %s: starting from step 0", self.ckpt.root)
            self.ckpt.reset()  # damaged leftovers only; they must not mix with this run
            self.metrics.truncate_after(0)
            return
        ck = self.ckpt.load(device="cpu")  # falls back past damaged ones, with a warning
        try:
            self._check_resumable(ck)
        except ResumeRefused as err:  # with the other settings to restore: one whole fix
            try:
                resume_settings(ck.state.get("config") or {}, self.cfg, ck.step, self.out)
            except ResumeRefused as more:
                err.settings = {**more.settings, **err.settings}
            raise
        cfg = resume_settings(ck.state.get("config") or {}, self.cfg, ck.step, self.out)
        if cfg.optim != self.cfg.optim:  # a longer run on the checkpoint's schedule
            self.scheduler = build_scheduler(self.optimizer, cfg.optim)
        self.cfg = cfg
        D.load_full_state(self.model, self.optimizer, ck.model, ck.optimizer)
        self.scheduler.load_state_dict(ck.state["scheduler"])
        self.sampler.load_state_dict(ck.state["sampler"])
        restore_rng(ck.state["rng_tensors"], ck.state["rng"])
        self.step, self.tokens = ck.step, int(ck.state["tokens"])
        self.last_eval = ck.state.get("last_eval", {})
        self.metrics.truncate_after(self.step)
        log.info("resumed from %s (step %d)", ck.path, self.step)

    def _check_resumable(self, ck: Checkpoint) -> None:
        saved = {"objective": ck.state.get("objective"),
                 **{f"model.{k}": v for k, v in (ck.state.get("model_config") or {}).items()}}
        mine = {"objective": self.objective.name,
                **{f"model.{k}": v for k, v in self.model.cfg.to_dict().items()}}
        try:
            check_identity(f"{ck.path} holds a run", saved, mine, keys=list(mine),
                           fix="resume with the same settings, or pick a new --out / drop "
                               "--resume")
        except ValueError as err:  # the settings that resume it, for the CLI's whole command
            raise ResumeRefused(str(err), {k: _flag_value(saved[k]) for k in mine
                                           if k in saved and saved[k] != mine[k]}) from None
        tok = ck.state.get("tokenizer_sha256")
        if tok and tok != self.shards.tokenizer_sha256:
            raise ValueError(f"{ck.path} was trained on data of tokenizer {tok[:12]}… but "
                             f"--data has {self.shards.tokenizer_sha256[:12]}…; fix: resume "
                             "with the run's own --data, or start a new --out")

    def _save(self, metric: float | None) -> None:
        model_sd, optim_sd = D.full_state(self.model, self.optimizer)  # collective under FSDP
        if self.env.is_main:
            state = {"scheduler": self.scheduler.state_dict(),
                     "sampler": self.sampler.state_dict(), "tokens": self.tokens,
                     "last_eval": self.last_eval,
                     "objective": self.objective.name, "config": self.cfg.to_dict(),
                     "tokenizer_sha256": self.shards.tokenizer_sha256,
                     "model_config": self.model.cfg.to_dict()}
            path = self.ckpt.save(Checkpoint(self.step, model_sd, optim_sd, state), metric)
            log.info("saved %s", path)

    # ---- the loop --------------------------------------------------------------------------
    def fit(self, resume: bool = False, force: bool = False) -> dict[str, Any]:
        # Rank 0 alone writes the run directory, so it alone holds the lock.
        lock = DirLock(self.out, "run directory") if self.env.is_main else (
            contextlib.nullcontext())
        with lock:
            return self._fit(resume, force)

    def _fit(self, resume: bool, force: bool) -> dict[str, Any]:
        if self.env.is_main:
            self._claim_dir(resume, force)
        if resume:
            self._resume()
        # The count used is recorded (config.yaml, checkpoints): bitwise results need it.
        self.cfg.system.threads = use_threads(self.cfg.system.threads)
        if self.env.is_main:  # after _resume, which refuses changed settings: it never lies
            atomic_write_text(self.out / LAYOUT.train.config, dump_yaml(self.cfg))
        start, t0 = self.step, time.perf_counter()
        bar = step_bar(self.cfg.optim.max_steps, self.step, "train",
                       show=self.env.is_main and self.cfg.logging.progress)
        self.model.train()
        while self.step < self.cfg.optim.max_steps:
            t_step = time.perf_counter()
            loss, parts, grad_norm = self._train_step()
            self.train_s += time.perf_counter() - t_step
            self.step += 1
            self.tokens += self.cfg.data.batch_size * self.cfg.data.seq_len
            # Mean over this session's optimizer steps (eval and checkpoints excluded).
            tok_s = (self.step - start) * self.cfg.data.batch_size * self.cfg.data.seq_len / (
                self.train_s)
            bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tok_s:,.0f}")
            bar.update(1)
            self._after_step(loss, parts, grad_norm, tok_s)
        bar.close()
        wall = time.perf_counter() - t0
        return self._finish(start, wall)

    def _train_step(self) -> tuple[float, dict[str, float], float]:
        accum = self.cfg.optim.grad_accum
        totals = None
        for i, starts in enumerate(np.split(self.sampler.next_starts(), accum)):
            batch = self._batch("train", starts)
            with D.no_sync(self.ddp, skip=i < accum - 1), self.autocast():
                loss, parts = self.objective(self.wrapped, batch, self.weights, self.model)
            (loss / accum).backward()
            vec = torch.stack([loss.detach().float()] + [v.float() for v in parts.values()])
            totals = vec if totals is None else totals + vec
        totals = D.all_reduce_sum(totals / (accum * self.env.world_size), self.env)
        values = totals.tolist()
        grad_norm = self._clip()
        if not all(math.isfinite(v) for v in values + [grad_norm]):
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(self._nan_message(values[0], grad_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return values[0], dict(zip(parts, values[1:])), grad_norm

    def _clip(self) -> float:
        clip = self.cfg.optim.grad_clip
        params = [p for p in self.model.parameters() if p.grad is not None]
        norm = nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
        return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)

    def _nan_message(self, loss: float, grad_norm: float) -> str:
        last = self.ckpt.latest()
        where = f"the last good checkpoint is {last}" if last else "no checkpoint was saved yet"
        return (f"non-finite training loss {loss} (grad norm {grad_norm}) at step "
                f"{self.step + 1}; stopped without updating the weights; {where}; lower "
                "--optim.lr or check the data")

    def _batch(self, split: str, starts) -> Batch:
        x, y = self.shards.batch(split, starts, self.cfg.data.seq_len)
        x, y = x.to(self.env.device), y.to(self.env.device)
        want = self.objective.needs_labels and self.labels is not None
        return Batch(x, y, self.labels.get(split, starts, x, y) if want else None)

    def _after_step(self, loss: float, parts: dict[str, float], grad_norm: float,
                    tok_s: float) -> None:
        lg, ck, last = self.cfg.logging, self.cfg.checkpoint, self.cfg.optim.max_steps
        if self.step % lg.log_every == 0 or self.step == last:
            self.metrics.write({"split": "train", "step": self.step, "loss": loss, **parts,
                                "lr": self.scheduler.get_last_lr()[0],
                                "grad_norm": grad_norm, "tokens": self.tokens,
                                "tokens_per_s": tok_s})
        metric = None
        if self.step % lg.eval_every == 0 or self.step == last:
            self.last_eval = self.evaluate()
            metric = self.last_eval["val_loss"]
            self.metrics.write({"split": "val", "step": self.step, "tokens": self.tokens,
                                **self.last_eval})
        if self.step % ck.every == 0 or self.step == last:
            self._save(metric)

    def evaluate(self) -> dict[str, float]:
        c = self.cfg
        return evaluate(self.wrapped, self.model, self.objective, self.shards, c.data.val_split,
                        self.eval_starts, c.data.seq_len, self.micro, self.labels, self.env,
                        self.autocast)

    def _finish(self, start_step: int, wall: float) -> dict[str, Any]:
        steps = self.step - start_step
        run_tokens = steps * self.cfg.data.batch_size * self.cfg.data.seq_len
        summary = {"objective": self.objective.name, "steps": self.step,
                   "tokens": self.tokens, "wall_s": wall, "train_s": self.train_s,
                   "tokens_per_s": run_tokens / self.train_s if steps else None,
                   "world_size": self.env.world_size, "n_params": count_params(self.model),
                   "model_config": self.model.cfg.to_dict(), **self.last_eval,
                   "best_checkpoint": str(self.ckpt.best()) if self.ckpt.best() else None,
                   "out_dir": str(self.out)}
        model_sd, _ = D.full_state(self.model, self.optimizer)
        if self.env.is_main:
            final = CoCoMixModel(self.model.cfg)
            final.load_state_dict(model_sd)
            final.save_pretrained(self.out / LAYOUT.train.model, tokenizer=self.shards.tokenizer,
                                  metadata={"objective": self.objective.name, "step": self.step})
            atomic_write_json(self.out / LAYOUT.train.summary, summary)
        self.metrics.close()
        return summary


# ---- helpers ------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed torch, numpy's and Python's global RNGs: checkpoints hold all three, so a fresh
    process must start them from the seed too, or two seeded runs differ in their bytes."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


# Settings a resume may change: how the run is watched, saved and where its inputs lie (their
# contents are checked by hash). Any other change would make the resumed run a different one.
RESUME_MAY_CHANGE = ("logging.", "checkpoint.", "system.", "data.dir", "concept.labels",
                     "concept.teacher", "concept.sae")


class ResumeRefused(ValueError):
    """A resume refused because its settings would make another run. `settings`: {dotted
    key: the run's value as a flag value, or None where the run had no such key (drop the
    flag)}, so a caller that knows the command line (the CLI) can print the whole command."""

    def __init__(self, message: str, settings: dict[str, Any]):
        super().__init__(message)
        self.settings = settings


def resume_settings(saved: dict[str, Any], cfg: RunConfig, done: int,
                    out: Path) -> RunConfig:
    """`cfg` for resuming a checkpoint saved with config `saved`: refused (ResumeRefused,
    naming the flags that resume it) when a setting that shapes the run changed, or
    --max-steps is below the steps done; a larger --max-steps keeps the checkpoint's schedule
    (`schedule_steps`), so the cosine does not jump back up."""
    cfg = _resume_threads(saved, cfg)
    if cfg.optim.max_steps < done:
        raise ResumeRefused(f"--max-steps {cfg.optim.max_steps} is below the {done} steps "
                            f"{out} has done; fix: pass --max-steps {done} or more with "
                            "--resume, or train a new --out", {"optim.max_steps": str(done)})
    old, new = _flat(saved), _flat(cfg.to_dict())
    horizon = old.get("optim.schedule_steps") or old.get("optim.max_steps")
    extended = new["optim.max_steps"] != old.get("optim.max_steps") or old.get(
        "optim.schedule_steps") is not None
    if horizon is not None and extended and new["optim.schedule_steps"] is None:
        cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim,
                                                                 schedule_steps=horizon))
        new = _flat(cfg.to_dict())
        log.info("--max-steps %d on resume: the schedule keeps its %d-step horizon "
                 "(lr flat at min_lr_ratio after it)", cfg.optim.max_steps, horizon)
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
               and not k.startswith(RESUME_MAY_CHANGE) and k != "optim.max_steps"]
    if horizon is not None and new["optim.schedule_steps"] == horizon:
        changed = [k for k in changed if k != "optim.schedule_steps"]
    if changed:
        what = ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:4])
        flags = " ".join(f"--{k} {_flag_value(old[k])}" if k in old else f"without --{k}"
                         for k in changed)
        raise ResumeRefused(f"--resume with changed settings ({what}): the checkpoint's "
                            f"schedule and data order are laid out for its own; fix: resume "
                            f"with {flags} (the run's), or train a new --out with the new "
                            "settings", {k: _flag_value(old[k]) if k in old else None
                                         for k in changed})
    return cfg


def _resume_threads(saved: dict[str, Any], cfg: RunConfig) -> RunConfig:
    """The run's own thread count unless `cfg` names one: results are bitwise the same only
    for the same count (a resume picking its default anew under another load drifted by
    ~1e-7, issue 25 item 11); another count is taken, with a warning."""
    ran = (saved.get("system") or {}).get("threads")
    if ran is None:
        return cfg  # a checkpoint older than the recorded count
    if cfg.system.threads is None:
        return dataclasses.replace(cfg, system=dataclasses.replace(cfg.system, threads=ran))
    if cfg.system.threads != ran:
        log.warning("resuming on %d CPU threads where the run used %d: the weights will "
                    "differ in the last bits from an uninterrupted run; to keep them the same, "
                    "resume without a thread count (the run's is used)",
                    cfg.system.threads, ran)
    return cfg


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):  # an empty one (no overrides) adds no key
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = tuple(v) if isinstance(v, list) else v
    return out


def _flag_value(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (tuple, list)):
        return ",".join(map(str, v))
    return "none" if v is None else str(v)


def check_run_config(cfg: RunConfig) -> None:
    """Refuse settings that would only fail later, naming the flag; before any work."""
    check_fields(cfg, "--")  # every field's Range, also when built in Python, not parsed


def open_shards(data: Any):
    """A TokenShards from an instance or a directory."""
    if data is None:
        raise ValueError("no training data: pass --data DIR (made by `cocomix-lens prepare`)")
    if hasattr(data, "batch") and hasattr(data, "n_tokens"):
        return data
    from cocomix_lens.data import TokenShards

    return TokenShards.open(data)


def micro_batch(cfg: RunConfig, world_size: int) -> int:
    """Windows per rank per micro-batch: batch_size / (world_size * grad_accum)."""
    parts = world_size * cfg.optim.grad_accum
    if cfg.data.batch_size % parts:
        raise ValueError(f"data.batch_size={cfg.data.batch_size} is not divisible by "
                         f"world_size * grad_accum = {parts}; pick a multiple of {parts}")
    return cfg.data.batch_size // parts


def count_params(model: nn.Module) -> int:
    """Parameters counted once each (tied weights once), as the paper counts them."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())

