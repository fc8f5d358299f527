"""Train every arm of the study per seed, resumably, and read back their curves.

    result = run_study("runs/world", StudySettings(seeds=[0, 1]), get_arms(None))

Layout under the run directory:
    study/settings.json            budget, eval points and batches (a re-run must match)
    study/labels_<method>/         label caches of the variants (built by the labels stage's
                                   code; the pipeline's own cache serves its method)
    study/runs/<arm>/seed<k>/      trainer run dirs; `study_done.json` marks a finished one
    study/study.json, study.md, figures/
A re-run skips arms with a marker and resumes an interrupted one from its checkpoint.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from cocomix_lens.data.files import atomic_write_json
from cocomix_lens.rundir import LAYOUT, Run
from training.pipeline import Context, build_label_cache, open_context
from training.stage_runs import student_run_config
from training.study.arms import Arm, StudySettings

log = logging.getLogger(__name__)

STUDY_DIR = LAYOUT.pipeline.study
DONE = "study_done.json"
SETTINGS = "settings.json"
# Settings that change what a finished run holds; seeds, arms and the measurements may vary.
IDENTITY = ("budget", "eval_points", "eval_batches")


class Study:
    """The run's context, the study directory and the resolved budget."""

    def __init__(self, run_dir: str | Path, settings: StudySettings, device: str = "cpu",
                 progress: bool = True):
        self.ctx: Context = open_context(run_dir, device=device, progress=progress)
        self.root = Path(run_dir) / STUDY_DIR
        self.settings = settings
        p = self.ctx.cfg
        self.window_tokens = p.batch_size * p.seq_len
        budget = settings.budget or p.student.max_steps * self.window_tokens
        self.steps = max(budget // self.window_tokens, 1)
        if settings.eval_points < 1:
            raise ValueError(f"eval_points={settings.eval_points} must be >= 1; fix: pass "
                             "--eval-points 1 or more")
        self.eval_every = max(self.steps // settings.eval_points, 1)
        self.eval_batches = settings.eval_batches or p.eval_batches

    @property
    def budget(self) -> int:
        """Training tokens per run (whole optimizer steps)."""
        return self.steps * self.window_tokens

    def identity(self) -> dict[str, Any]:
        return {"budget": self.budget, "eval_points": self.settings.eval_points,
                "eval_batches": self.eval_batches}

    def claim(self) -> None:
        """Record the settings, or refuse a study directory trained with other ones."""
        path = self.root / SETTINGS
        mine = self.identity()
        if path.is_file():
            old = json.loads(path.read_text())
            diff = [k for k in IDENTITY if old.get(k) != mine.get(k)]
            if diff:
                raise ValueError(
                    f"{self.root} holds a study with other settings ({', '.join(diff)}: "
                    f"{[old.get(k) for k in diff]} vs {[mine.get(k) for k in diff]}); fix: "
                    f"pass the same --budget/--eval-points, or delete {self.root}")
            return
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, mine)

    # ---- label caches -------------------------------------------------------------------
    def labels_dir(self, method: str) -> Path:
        if method == self.ctx.cfg.labels.method:
            return self.ctx.dir("labels")
        return self.root / f"labels_{method}"

    def ensure_labels(self, arms: list[Arm]) -> dict[str, dict[str, Any]]:
        """Build (or resume) the label cache of every method the arms use."""
        out = {}
        for method in dict.fromkeys(a.method for a in arms):
            root = self.labels_dir(method)
            if root == self.ctx.dir("labels") and (root / "meta.json").is_file():
                out[method] = {"labels_dir": str(root), "built": False}
                continue
            log.info("study: label cache %s -> %s", method, root)
            out[method] = {**build_label_cache(self.ctx, method, root), "built": True}
        return out

    # ---- training -------------------------------------------------------------------------
    def run_dir(self, arm: Arm, seed: int) -> Path:
        return self.root / "runs" / arm.name / f"seed{seed}"

    def run_config(self, arm: Arm, seed: int):
        """The arm's RunConfig: the pipeline's student settings, this seed and budget."""
        cfg = student_run_config(self.ctx.cfg, self.ctx.dir("shards"),
                                 self.labels_dir(arm.method), arm.objective)
        cfg.seed = seed
        cfg.optim.max_steps = self.steps
        cfg.optim.warmup_steps = max(self.steps // 20, 1)
        cfg.checkpoint.every = max(self.steps // 4, 1)
        cfg.logging.eval_every, cfg.logging.eval_batches = self.eval_every, self.eval_batches
        if arm.objective == "kd":
            cfg.concept.teacher = str(self.ctx.dir("teacher"))
        return cfg

    def train_arm(self, arm: Arm, seed: int) -> dict[str, Any]:
        """Train (or resume, or skip when finished) one arm at one seed; its marker."""
        out = self.run_dir(arm, seed)
        cfg = self.run_config(arm, seed)
        marker = out / DONE
        if marker.is_file():
            done = json.loads(marker.read_text())
            if done.get("config") == _comparable(cfg):
                return done
            log.warning("study: %s holds another config; training it again", out)
            marker.unlink()
        from cocomix_lens.concepts import LabelCache
        from training.trainer import train

        shards, pair = self.ctx.shards(), self.ctx.teacher_pair()
        # Every arm gets a cache: objectives without labels use it only to align windows,
        # so all arms of a seed draw the very same windows in the same order.
        labels = LabelCache.open(cfg.concept.labels, shards=shards,
                                 teacher_sha=pair.model_sha256, sae_sha=pair.sae_sha256)
        teacher = pair.model if arm.objective == "kd" else None
        summary = train(cfg, data=shards, labels=labels, teacher=teacher, out_dir=out,
                        resume=True)
        done = {"arm": arm.name, "seed": seed, "config": _comparable(cfg),
                "summary": {k: v for k, v in summary.items() if k != "model_config"},
                "curve": read_curve(out)}
        atomic_write_json(marker, done)
        return done

    def finished(self, arms: list[Arm]) -> dict[str, dict[int, dict[str, Any]]]:
        """arm -> seed -> marker of the runs already finished (nothing is trained)."""
        out: dict[str, dict[int, dict[str, Any]]] = {}
        for arm in arms:
            for seed in self.settings.seeds:
                marker = self.run_dir(arm, seed) / DONE
                if marker.is_file():
                    done = json.loads(marker.read_text())
                    if done.get("config") == _comparable(self.run_config(arm, seed)):
                        out.setdefault(arm.name, {})[seed] = done
        return out

    def train_all(self, arms: list[Arm]) -> dict[str, dict[int, dict[str, Any]]]:
        """arm -> seed -> marker, training what is missing (seed-major: every arm of seed 0
        first, so a stopped study has complete seeds)."""
        jobs = [(s, a) for s in self.settings.seeds for a in arms]
        out: dict[str, dict[int, dict[str, Any]]] = {a.name: {} for a in arms}
        # One bar over the runs here, and the trainer's own bar inside each run.
        for i, (seed, arm) in enumerate(self.ctx.progress(jobs, len(jobs), "study runs")):
            log.info("study: run %d/%d: %s seed %d (%s tokens)", i + 1, len(jobs), arm.name,
                     seed, f"{self.budget:,}")
            out[arm.name][seed] = self.train_arm(arm, seed)
        return out

    def model(self, arm: str, seed: int):
        """The final model of a finished run (eval mode, tokenizer attached)."""
        return Run.open(self.root / "runs" / arm / f"seed{seed}",
                        device=self.ctx.cfg.device).student


def both_seeds(markers: dict[str, dict[int, Any]]) -> list[int]:
    """Seeds for which both the ntp and the cocomix run finished."""
    return sorted(set(markers.get("ntp", {})) & set(markers.get("cocomix", {})))


def read_curve(run_dir: Path) -> dict[str, list[float]]:
    """{"tokens": [...], "val_loss": [...]} of a run's validation records, by tokens."""
    records = [r for r in Run.open(run_dir).metrics["train"] if r.get("split") == "val"]
    records.sort(key=lambda r: r["tokens"])
    return {"tokens": [int(r["tokens"]) for r in records],
            "val_loss": [float(r["val_loss"]) for r in records]}


def _comparable(cfg) -> dict[str, Any]:
    """The config as JSON would store it, without fields that change no result; paths are
    dropped too (the arm's directory fixes its label method), so a re-run from another
    working directory still reuses the run."""
    d = json.loads(json.dumps(cfg.to_dict()))
    d["logging"].pop("progress", None)
    for key in ("device", "threads"):  # not a run's identity, as in pipeline.NON_IDENTITY
        d["system"].pop(key, None)
    d["data"].pop("dir", None)
    for key in ("labels", "teacher"):
        d["concept"].pop(key, None)
    return d


def run_study(run_dir: str | Path, settings: StudySettings, arms: list[Arm],
              device: str = "cpu", progress: bool = True) -> dict[str, Any]:
    """Train what is missing, measure, judge every claim and write study.json, study.md and
    the figures into `run_dir`/study; returns study.json's content."""
    from training.study import measure, plots, report
    from training.study.claims import judge

    study = Study(run_dir, settings, device, progress)
    study.claim()
    if settings.report_only:  # judge the finished runs; arms without one drop out
        labels, markers = {}, study.finished(arms)
        arms = [a for a in arms if a.name in markers]
    else:
        labels = study.ensure_labels(arms)
        markers = study.train_all(arms)
    res = {"curves": {a: {s: m["curve"] for s, m in seeds.items()}
                      for a, seeds in markers.items()},
           "budget": study.budget, "probe": {}, "steering": {}}
    names = {a.name for a in arms}
    if {"ntp", "cocomix"} <= names:  # probes and steering on the seeds both arms finished
        truth = measure.ground_truth(study.ctx.dir("shards"))
        if truth is not None:
            res["probe"] = {s: measure.probe_seed(study, s, truth) for s in both_seeds(markers)}
    if "cocomix" in names and settings.steer_samples > 0:
        run = Run.open(run_dir, device=device)
        concepts = measure.steer_concepts(run)
        res["steering"] = {s: measure.steer_seed(run, study.model("cocomix", s), concepts,
                                                 settings.steer_samples, s)
                           for s in sorted(markers["cocomix"])}
    claims = judge(res)
    table = report.ablation_table(res["curves"])
    figures = plots.write_figures(study.root / plots.FIGURES, res["curves"], claims, table)
    p = study.ctx.cfg
    doc = {"run": str(run_dir), "settings": settings.to_dict(), "budget": study.budget,
           "eval_every_tokens": study.eval_every * study.window_tokens,
           "eval_tokens": study.eval_batches * p.batch_size * p.seq_len,
           "arms": [a.__dict__ for a in arms], "labels": labels, "claims": claims,
           "ablations": table, "figures": figures,
           "runs": {a: {s: {k: m["summary"].get(k) for k in ("val_loss", "tokens_per_s",
                                                            "wall_s", "n_params")}
                        for s, m in seeds.items()} for a, seeds in markers.items()},
           "curves": res["curves"], "probe": res["probe"], "steering": res["steering"]}
    report.write_json(study.root, doc)
    report.write_markdown(study.root, doc)
    return report.load(study.root)


def redraw(study_root: str | Path) -> dict[str, Any]:
    """Re-draw the figures (HTML, and PNG with kaleido) and study.md of a finished study from
    its study.json alone: trains, measures and re-judges nothing, so it works where the run
    directory is gone (e.g. results committed under benchmarks/results/)."""
    from training.study import plots, report

    root = Path(study_root)
    if not (root / report.JSON).is_file():
        raise FileNotFoundError(f"{root / report.JSON} not found; fix: pass the study "
                                "directory (RUN/study) of a finished `cocomix-lens study`")
    doc = report.load(root)
    doc["figures"] = plots.write_figures(root / plots.FIGURES, doc["curves"], doc["claims"],
                                         doc["ablations"])
    report.write_json(root, doc)
    report.write_markdown(root, doc)
    return doc
