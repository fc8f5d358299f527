"""The offline pipeline: prepare -> teacher -> SAE -> label cache -> NTP and CoCoMix students
-> concept catalogue.

    summary = run_pipeline(pipeline_preset("tiny"), "runs/demo")

Each stage is a function of the run context registered in `STAGES`. After it succeeds, a
marker `stages/<name>.json` (its results and wall time) is written atomically; a re-run skips
stages with a marker. A stage interrupted midway resumes: prepare and labels are idempotent
and resumable by themselves, the three training runs continue from their last checkpoint
(the trainer's resume). Both students use the same seed, windows (aligned to the label
cache's window) and token budget. The run directory's layout is
`cocomix_lens.rundir.LAYOUT` (read back by `cocomix_lens.Run.open`):

    data/      token shards + tokenizer.json      teacher/model/   teacher (save_pretrained)
    sae/       SAE-Lens SAE (cfg.json, sae_weights.safetensors, quality.json)
    labels/    label cache                        ntp/model/, cocomix/model/   the students
    catalogue/ concept catalogue (Parquet)
    stages/    markers                            pipeline.json, summary.json, REPORT.md
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cocomix_lens.data.files import atomic_write_json
from cocomix_lens.data.identity import differences
from cocomix_lens.data.lock import DirLock
from cocomix_lens.progress import Progress, progress_for
from cocomix_lens.rundir import LAYOUT
from training.pipeline_config import PipelineConfig
from training.side_stage import SideStage
from training.stage_runs import (
    run_fields,
    student_run_config,
    teacher_run_config,
    train_teacher,
)
from training.threads import use_threads

log = logging.getLogger(__name__)

# Fields that may differ between invocations on one run directory (they change no result).
NON_IDENTITY = ("device", "progress", "threads", "parallel")


@dataclass
class Context:
    """What every stage sees: the config, the run directory and the corpus options."""

    cfg: PipelineConfig
    out: Path
    corpus_options: dict[str, Any]

    def dir(self, piece: str) -> Path:
        """Where `piece` ("shards", "teacher", "sae", "labels", ...) lives: LAYOUT's path."""
        return self.out / LAYOUT.pieces("pipeline")[piece]

    def run_dir(self, stage: str) -> Path:
        """The trainer run directory of a training stage ("teacher", "ntp", "cocomix")."""
        return self.out / LAYOUT.pipeline.run_dir(stage)

    def shards(self):
        from cocomix_lens.data import TokenShards

        return TokenShards.open(self.dir("shards"), verify=True)

    def teacher_pair(self):
        """The trained teacher and its SAE (`cocomix_lens.concepts.Teacher`)."""
        from cocomix_lens.concepts import load_teacher

        return load_teacher(self.dir("teacher"), self.dir("sae"), device=self.cfg.device)

    @property
    def progress(self) -> Progress:
        return progress_for(self.cfg.progress)


# ---- stages ---------------------------------------------------------------------------------
def stage_prepare(ctx: Context) -> dict[str, Any]:
    from training.corpus import open_corpus, prepare_shards

    d = ctx.cfg.data
    opts = {"max_docs": d.max_docs, "path": d.path, **ctx.corpus_options}
    if d.separator is not None:
        from training.corpus.text import unescape

        opts["separator"] = unescape(d.separator)
    corpus = open_corpus(d.corpus, **opts)
    res = prepare_shards(corpus, ctx.dir("shards"), vocab_size=d.vocab_size,
                         val_fraction=d.val_fraction, seed=ctx.cfg.seed,
                         progress=ctx.progress)
    m = res.manifest
    return {"train_tokens": m["splits"]["train"]["tokens"],
            "val_tokens": m["splits"]["val"]["tokens"], "vocab_size": m["vocab_size"],
            "tokenizer_sha256": m["tokenizer_sha256"], "corpus": d.corpus,
            "data_dir": str(ctx.dir("shards")),
            "tokenizer": str(ctx.dir("tokenizer"))}


def stage_teacher(ctx: Context) -> dict[str, Any]:
    return train_teacher(ctx.cfg, ctx.shards(), ctx.run_dir("teacher"))


def stage_sae(ctx: Context) -> dict[str, Any]:
    from cocomix_lens import CoCoMixModel
    from cocomix_lens.concepts import load_sae
    from training.sae import (
        ce_loss_recovered,
        collect_activations,
        default_hook,
        sae_quality,
        save_sae,
        train_sae,
    )

    cfg, s = ctx.cfg, ctx.cfg.sae
    shards = ctx.shards()
    teacher = CoCoMixModel.from_pretrained(ctx.dir("teacher"), device=cfg.device)
    teacher.eval()
    hook = s.hook or default_hook(teacher.cfg.n_layers)
    train_acts = collect_activations(teacher, shards.split("train"), hook, s.train_tokens,
                                     cfg.seq_len, s.seed)
    eval_acts = collect_activations(teacher, shards.split("val"), hook, s.eval_tokens,
                                    cfg.seq_len, s.seed + 1)
    sae = train_sae(train_acts, hook, s, model_name="cocomix-lens-teacher",
                    context_size=cfg.seq_len, progress=cfg.progress)
    save_sae(sae, ctx.dir("sae"))
    # Quality of the SAE as it was saved and will be used: read back through SAE-Lens.
    saved = load_sae(ctx.dir("sae"), device=cfg.device)
    quality = sae_quality(saved, eval_acts.to(cfg.device))
    quality.update(ce_loss_recovered(teacher, saved, shards.split("val"), hook, cfg.seq_len))
    result = {"hook": hook, "d_in": int(saved.cfg.d_in), "d_sae": int(saved.cfg.d_sae),
              "k": s.k, "train_activations": len(train_acts), **quality,
              # as the saved SAE's config says (REPORT.md's header): how SAE-Lens trained it
              # and the architecture it was saved as (BatchTopK ones are saved as JumpReLU)
              "training_architecture": saved.cfg.metadata.training_architecture,
              "architecture": saved.cfg.architecture(),
              "sae_dir": str(ctx.dir("sae"))}
    atomic_write_json(ctx.dir("sae") / "quality.json", result)
    return result


def stage_labels(ctx: Context) -> dict[str, Any]:
    return build_label_cache(ctx, ctx.cfg.labels.method, ctx.dir("labels"))


def build_label_cache(ctx: Context, method: str, root: Path) -> dict[str, Any]:
    """Build (or resume) the run's label cache of attribution `method` in `root`; the labels
    stage's results. The study builds its label variants through this too."""
    from cocomix_lens.concepts import ConceptExtractor, LabelCache

    lab, shards = ctx.cfg.labels, ctx.shards()
    pair = ctx.teacher_pair()
    extractor = ConceptExtractor(pair.model, pair.sae, method=method)
    t0 = time.perf_counter()
    cache = LabelCache.build(root, shards, extractor,
                             teacher_sha=pair.model_sha256, sae_sha=pair.sae_sha256,
                             teacher_name=pair.model_spec, sae_name=pair.sae_spec, k=lab.k,
                             window=ctx.cfg.seq_len, batch_size=lab.batch_size,
                             progress=ctx.progress)
    wall = time.perf_counter() - t0
    tokens = sum(int(i["tokens"]) for i in cache.meta["splits"].values())
    return {"tokens": tokens, "tokens_per_s": tokens / wall if wall > 0 else None,
            "k": lab.k, "method": method, "window": ctx.cfg.seq_len,
            "n_latents": int(cache.meta["n_latents"]), "labels_dir": str(root)}


def _train_student(ctx: Context, objective: str) -> dict[str, Any]:
    from cocomix_lens.concepts import LabelCache
    from training.label_sources import WindowsOnly
    from training.objectives import get_objective
    from training.trainer import train

    shards = ctx.shards()
    if get_objective(objective).needs_labels:
        pair = ctx.teacher_pair()
        labels = LabelCache.open(ctx.dir("labels"), shards=shards,
                                 teacher_sha=pair.model_sha256, sae_sha=pair.sae_sha256)
    else:  # windows aligned as the cache's (window = seq_len): both students see the same
        labels = WindowsOnly(ctx.cfg.seq_len)
    out = ctx.run_dir(objective)
    cfg = student_run_config(ctx.cfg, ctx.dir("shards"), ctx.dir("labels"), objective)
    summary = train(cfg, data=shards, labels=labels,
                    out_dir=out, resume=True)
    return run_fields(summary, out)


def stage_catalog(ctx: Context) -> dict[str, Any]:
    from cocomix_lens.catalogue import build_for_run
    from cocomix_lens.rundir import Run

    cat = build_for_run(Run.open(ctx.out, device=ctx.cfg.device), progress=ctx.progress)
    return {"concepts": len(cat), "dead": int(cat.concepts["dead"].sum()),
            "build_s": cat.meta["build_s"], "catalogue_dir": str(cat.root)}


def stage_groundtruth(ctx: Context) -> dict[str, Any]:
    from training.pipeline_groundtruth import stage_groundtruth as run  # torch, on use only

    return run(ctx)


STAGES: dict[str, Callable[[Context], dict[str, Any]]] = {
    "prepare": stage_prepare,
    "teacher": stage_teacher,
    "sae": stage_sae,
    "labels": stage_labels,
    "ntp": lambda ctx: _train_student(ctx, "ntp"),
    "cocomix": lambda ctx: _train_student(ctx, "cocomix"),
    "groundtruth": stage_groundtruth,  # world only: recovery of the known latents
    "catalog": stage_catalog,
}
"""Stages in run order; each returns the results recorded in its marker."""


# ---- running ----------------------------------------------------------------------------------
def run_pipeline(cfg: PipelineConfig, out: str | Path, corpus_options: dict | None = None,
                 stop_after: str | None = None) -> dict[str, Any]:
    """Run (or finish) the pipeline in `out`; returns summary.json's content."""
    if stop_after is not None and stop_after not in STAGES:
        raise ValueError(f"unknown stage {stop_after!r}; choose one of {', '.join(STAGES)}")
    # One thread count for every stage, recorded in pipeline.json and summary.json's config
    # (bitwise results need the same count); not part of the run's identity, so a resume may
    # change it, but without a count it keeps the run's.
    cfg = dataclasses.replace(cfg, threads=use_threads(resume_threads(cfg.threads, Path(out))))
    ctx = Context(cfg, Path(out), dict(corpus_options or {}))
    check_models(ctx)
    with DirLock(ctx.out, "pipeline run directory"):
        _claim(ctx)
        records: dict[str, dict[str, Any]] = {}
        side = None  # the NTP student in a second process, beside the teacher chain
        here = ctx  # the context of the stages run here: fewer threads while `side` runs
        try:
            for name, fn in STAGES.items():
                if side and name == side.name:
                    records[name], here = side.wait(), ctx
                else:
                    records[name] = run_stage(here, name, fn)
                if name == stop_after:
                    break
                if name == SideStage.after:
                    side = SideStage.start(ctx, stop_after)
                    here = side.narrowed(ctx) if side else ctx
        finally:
            if side:
                side.stop()
        from training.pipeline_report import write_summary

        return write_summary(ctx, records)


def check_models(ctx: Context) -> None:
    """Build the three runs' architectures now, so a bad shape fails before any stage runs
    (the vocabulary and concept count are the configured ones; the real ones come later)."""
    from training.objectives import get_objective
    from training.trainer import check_run_config

    data, labels = ctx.dir("shards"), ctx.dir("labels")
    runs = {"teacher": teacher_run_config(ctx.cfg, data),
            **{s: student_run_config(ctx.cfg, data, labels, s) for s in ("ntp", "cocomix")}}
    for stage, run_cfg in runs.items():
        try:
            run_cfg.model_config(d_vocab=ctx.cfg.data.vocab_size, n_concepts=ctx.cfg.sae.d_sae,
                                 mix_mode=get_objective(run_cfg.objective).mix_mode)
        except ValueError as err:
            raise ValueError(f"the {stage} model cannot be built: {err}") from None
        check_run_config(run_cfg)  # e.g. an eval interval of 0, before hours of stages


def run_stage(ctx: Context, name: str, fn: Callable[[Context], dict[str, Any]]) -> dict:
    """Run stage `name` unless its marker shows it done; its record (+ skipped)."""
    marker = stage_marker(ctx, name)
    if marker.is_file():
        log.info("stage %s: done before, skipped (%s)", name, marker)
        return {**json.loads(marker.read_text()), "skipped": True}
    log.info("stage %s: running", name)
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn(ctx)
    # CPU seconds (all threads) next to wall time show how much a shared machine slowed us.
    record = {"stage": name, "wall_s": time.perf_counter() - t0,
              "cpu_s": time.process_time() - c0, "result": result,
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    marker.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(marker, record)
    log.info("stage %s: done in %.1f s", name, record["wall_s"])
    return {**record, "skipped": False}


def resume_threads(threads: int | None, out: Path) -> int | None:
    """The thread count to run on: `threads` when given, else the count the run in `out`
    recorded (pipeline.json's "threads"), as `train --resume` keeps its run's: a default picked
    anew under another load would change the last bits of every stage still to run. Another
    count than the run's is taken, with a warning."""
    try:
        ran = json.loads((out / LAYOUT.pipeline.config).read_text()).get("threads")
    except (OSError, ValueError, AttributeError):  # no run yet, or a damaged file: _claim says
        ran = None
    if threads is None:
        return ran
    if ran is not None and threads != ran:
        log.warning("%s: running on %d CPU threads where the run used %d: the stages still to "
                    "run will differ in the last bits from an uninterrupted run; to keep them "
                    "the same, resume without a thread count (the run's is used)", out,
                    threads, ran)
    return threads


def _claim(ctx: Context) -> None:
    """Record the config in pipeline.json (with the thread count, which is no part of the
    run's identity). A run made with other settings resumes when every changed setting feeds
    only stages that have not finished (their partial outputs are removed, so they restart
    with the new settings); otherwise it is refused with the flags that resume it."""
    path = ctx.out / LAYOUT.pipeline.config
    mine = _identity(ctx)
    record = {**mine, "threads": ctx.cfg.threads}
    if not path.is_file():
        atomic_write_json(path, record)
        return
    saved = json.loads(path.read_text())
    # A setting added after the run was recorded ran at its default then (the code had none)
    added = {k: v for k, v in _flatten(dataclasses.asdict(type(ctx.cfg)())).items()
             if k not in saved}
    old = {k: v for k, v in {**added, **saved}.items() if k not in NON_IDENTITY}
    changed = [k for k in sorted(set(old) | set(mine)) if old.get(k) != mine.get(k)]
    if not changed:
        if saved.get("threads") != ctx.cfg.threads:  # the count the next resume keeps
            atomic_write_json(path, record)
        return
    order = list(STAGES)
    done = [i for i, name in enumerate(order) if stage_marker(ctx, name).is_file()]
    last_done = max(done, default=-1)
    blocked = [k for k in changed if order.index(_feeds(k)) <= last_done]
    if blocked:
        from training.trainer import ResumeRefused

        diff = "; ".join(differences(old, mine, blocked))
        settings = {k2: v for k in blocked
                    for k2, v in _restore_settings(k, old.get(k), mine.get(k)).items()}
        if "data.path" in settings:  # a path is read with its corpus (--corpus FILE sets both)
            settings.setdefault("data.corpus", _restore_settings(
                "data.corpus", old.get("data.corpus"), None)["data.corpus"])
        restore = " ".join(f"{_flag(k)} {shlex.quote(v)}" for k, v in settings.items())
        # The CLI, which knows the command line, turns `settings` into the whole command.
        raise ResumeRefused(f"{ctx.out} holds a pipeline run whose finished stages used other "
                            f"settings: {diff}; fix: add `{restore}` to the command to resume "
                            "it, or pass another --out", settings)
    first = min(order.index(_feeds(k)) for k in changed)
    log.warning("%s: settings changed for stages not run yet (%s); %s restart with them",
                ctx.out, ", ".join(changed), ", ".join(order[first:]))
    for name in order[first:]:
        partial = _stage_output(ctx, name)
        if partial is not None and partial.is_dir() and not partial.is_symlink():
            shutil.rmtree(partial)
    atomic_write_json(path, record)


# The first stage each setting feeds, by its first dotted part (others: prepare, the safest).
FEEDS = {"teacher": "teacher", "seq_len": "teacher", "batch_size": "teacher",
         "eval_every": "teacher", "eval_batches": "teacher", "sae": "sae", "labels": "labels",
         "student": "ntp"}
# The LAYOUT piece an unfinished stage leaves behind (besides the trainer runs): removed when
# its settings change, so it restarts instead of resuming a build made with the old ones.
STAGE_PIECES = {"prepare": "shards", "sae": "sae", "labels": "labels"}


def _feeds(key: str) -> str:
    return FEEDS.get(key.split(".")[0], "prepare")


def _stage_output(ctx: Context, name: str) -> Path | None:
    if name in dict(LAYOUT.pipeline.runs):
        return ctx.run_dir(name)
    return ctx.dir(STAGE_PIECES[name]) if name in STAGE_PIECES else None


def stage_marker(ctx: Context, name: str) -> Path:
    return ctx.out / LAYOUT.pipeline.stages / f"{name}.json"


def _restore_settings(key: str, old: Any, new: Any) -> dict[str, str]:
    """{dotted setting: the run's value as a flag value} that restore `key` (a dict-valued
    one, e.g. student.overrides, by its changed entries)."""
    if isinstance(old, dict) or isinstance(new, dict):
        old, new = old or {}, new or {}
        return {k2: v for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
                for k2, v in _restore_settings(f"{key}.{k}", old.get(k), new.get(k)).items()}
    return {key: "none" if old is None else str(old).lower() if isinstance(old, bool)
            else str(old)}


def _flag(key: str) -> str:
    """The flag that sets dotted setting `key` (corpus options are plain flags: --separator)."""
    if key.startswith("corpus_options."):
        return "--" + key.split(".", 1)[1].replace("_", "-")
    return f"--{key}"


def _identity(ctx: Context) -> dict[str, Any]:
    flat = _flatten(dataclasses.asdict(ctx.cfg))
    flat.update({f"corpus_options.{k}": str(v) for k, v in ctx.corpus_options.items()})
    return {k: v for k, v in flat.items() if k not in NON_IDENTITY}


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "overrides":
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = json.loads(json.dumps(v))  # tuples -> lists, as re-read
    return out


def open_context(out: str | Path, **settings: Any) -> Context:
    """The Context of an existing pipeline run, rebuilt from its pipeline.json; `settings`
    sets fields that change no result (NON_IDENTITY: device, progress)."""
    from training.overrides import build

    path = Path(out) / LAYOUT.pipeline.config
    if not path.is_file():
        raise FileNotFoundError(f"{out} is not a pipeline run (no {LAYOUT.pipeline.config}); "
                                f"fix: make one with `cocomix-lens pipeline --out {out}`")
    nested: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for key, value in json.loads(path.read_text()).items():
        if key in NON_IDENTITY:  # the thread count the run recorded: a setting, below
            continue
        if key.startswith("corpus_options."):
            options[key.split(".", 1)[1]] = value
            continue
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    unknown = set(settings) - set(NON_IDENTITY)
    if unknown:
        raise ValueError(f"open_context sets only {', '.join(NON_IDENTITY)}, not "
                         f"{', '.join(sorted(unknown))}")
    nested.update(settings)
    return Context(build(PipelineConfig, nested, str(path)), Path(out), options)
