"""The run reader: every artifact of a run directory, loaded lazily: models, data and the
catalogue once; result files (summary, steering, steer-bench, ground truth, study) again
when a command rewrites them.

    from cocomix_lens import Run
    run = Run.open("runs/demo")             # `cocomix-lens pipeline` or `cocomix-lens train`
    run.student.generate("The ship", max_new_tokens=20, return_type="str")
    # also run.baseline, run.teacher, run.sae, run.labels, run.catalogue ...
    run.metrics["cocomix"][-1]              # metrics.jsonl records, keyed by stage

`LAYOUT` is the one definition of where each piece lives; `training.pipeline` and
`training.trainer` write through it, so reader and writers cannot drift apart. A missing piece
raises `MissingPieceError` (a FileNotFoundError) whose one line names the piece, the path
looked for and the command that makes it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from cocomix_lens.data.files import TOKENIZER_FILE, read_json, read_yaml
from cocomix_lens.remedy import Remedy, attach

log = logging.getLogger(__name__)

PIECES = ("tokenizer", "student", "baseline", "teacher", "sae", "labels", "shards", "summary",
          "report", "metrics", "catalogue", "steering", "groundtruth", "steer_bench", "study")


@dataclass(frozen=True)
class TrainLayout:
    """What one trainer run writes into its directory (`cocomix-lens train --out DIR`)."""

    model: str = "model"  # save_pretrained of the final weights (+ tokenizer.json)
    metrics: str = "metrics.jsonl"
    summary: str = "summary.json"
    config: str = "config.yaml"
    checkpoints: str = "checkpoints"


@dataclass(frozen=True)
class PipelineLayout:
    """Where each stage of `cocomix-lens pipeline --out DIR` puts its output."""

    data: str = "data"  # token shards + tokenizer.json
    tokenizer: str = f"data/{TOKENIZER_FILE}"
    sae: str = "sae"  # SAE-Lens save_model directory + quality.json
    labels: str = "labels"  # label cache
    stages: str = "stages"  # one marker <stage>.json per finished stage
    config: str = "pipeline.json"
    summary: str = "summary.json"
    report: str = "REPORT.md"
    catalogue: str = "catalogue"
    study: str = "study"  # `cocomix-lens study`: study.json, study.md, figures/, runs/
    study_json: str = "study/study.json"
    steering: str = "steering"  # `steer-eval --densest N --out RUN/steering` (make demo)
    steering_json: str = "steering/steering.json"
    steer_bench: str = "steering/bench"  # `cocomix-lens steer-bench --run RUN` (its default --out)
    steer_bench_json: str = "steering/bench/results.json"
    steer_bench_wiki: str = "steering/bench_wiki"  # `steer-bench` on a run without the world
    # World runs only: the groundtruth stage's concept <-> latent-value matches
    # (cocomix_lens.groundtruth.Recovery.summary per source).
    groundtruth: str = "groundtruth.json"
    # Trainer runs (each a TrainLayout directory), keyed by the stage that trains them.
    runs: tuple[tuple[str, str], ...] = (("teacher", "teacher"), ("ntp", "ntp"),
                                         ("cocomix", "cocomix"))

    def run_dir(self, stage: str) -> str:
        return dict(self.runs)[stage]


@dataclass(frozen=True)
class Layout:
    """Relative paths of a run directory's pieces, for both kinds of run."""

    train: TrainLayout = TrainLayout()
    pipeline: PipelineLayout = PipelineLayout()

    def pieces(self, kind: str) -> dict[str, str]:
        """Piece name -> relative path (file or directory) in a run of `kind`."""
        t, p = self.train, self.pipeline
        if kind == "train":
            return {"student": t.model, "tokenizer": f"{t.model}/{TOKENIZER_FILE}",
                    "summary": t.summary, "catalogue": p.catalogue,
                    "steering": p.steering_json, "steer_bench": p.steer_bench_json}
        model = {stage: f"{p.run_dir(stage)}/{t.model}" for stage in ("teacher", "ntp",
                                                                        "cocomix")}
        return {"tokenizer": p.tokenizer, "shards": p.data, "teacher": model["teacher"],
                "sae": p.sae, "labels": p.labels, "baseline": model["ntp"],
                "student": model["cocomix"], "summary": p.summary, "report": p.report,
                "catalogue": p.catalogue, "steering": p.steering_json,
                "groundtruth": p.groundtruth, "steer_bench": p.steer_bench_json,
                "study": p.study_json}

    def metrics(self, kind: str) -> dict[str, str]:
        """Stage -> relative path of its metrics.jsonl."""
        if kind == "train":
            return {"train": self.train.metrics}
        return {stage: f"{d}/{self.train.metrics}" for stage, d in self.pipeline.runs}


LAYOUT = Layout()
"""The one definition of a run directory's layout (readers and writers use it)."""

# A file whose presence shows the piece is complete (relative to the piece's path).
_MARKERS = {"student": "config.json", "baseline": "config.json", "teacher": "config.json",
            "sae": "cfg.json", "labels": "meta.json", "shards": "manifest.json",
            "catalogue": "meta.json"}


class MissingPieceError(FileNotFoundError):
    """A run directory lacks a piece; the one-line message names the command that makes it."""


# The trainer's summary.json numbers that pages and reports read, checked on reading (the
# pipeline's summary has other keys: each is optional).
SUMMARY_FIELDS = {"steps?": int, "tokens?": int, "n_params?": int,
                  "val_loss?": (float, type(None)), "tokens_per_s?": (float, type(None)),
                  "model_config?": {k: int for k in ("d_model", "n_layers", "n_heads", "d_vocab",
                                                     "n_ctx", "n_concepts", "concept_top_k")}}


class Run:
    """Read access to a run directory; open with `Run.open(path, device="cpu")`."""

    def __init__(self, path: Path, kind: str, device: str = "cpu") -> None:
        self.path, self.kind, self.device = path, kind, device
        self._results: dict[str, tuple[tuple[int, int], Any]] = {}

    @classmethod
    def open(cls, path: str | Path, device: str = "cpu") -> Run:
        """A pipeline run directory (pipeline.json / stages/) or a train run (model/ ...)."""
        check_device(device)
        path = Path(path)
        kind = _kind(path)
        if kind is None:
            makes = [Remedy(step, {"out": path}, verb="run") for step in ("pipeline", "train")]
            raise attach(FileNotFoundError(
                f"{path} is not a run directory (no {LAYOUT.pipeline.config} or "
                f"{LAYOUT.train.model}/); fix: {makes[0]} or {makes[1]}"), *makes)
        return cls(path, kind, device)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, kind={self.kind!r})"

    # ------------------------------------------------------------------ where

    @property
    def catalogue_dir(self) -> Path:
        """Where the concept catalogue of this run lives (it may not exist yet)."""
        return self.path / LAYOUT.pipeline.catalogue

    def where(self, piece: str) -> Path | None:
        """Absolute path of `piece` in this run (None where this kind of run has none)."""
        if piece not in PIECES:
            raise ValueError(f"unknown run piece {piece!r}; choose one of {', '.join(PIECES)}")
        if piece == "metrics":
            return self.path / LAYOUT.train.metrics if self.kind == "train" else self.path
        rel = LAYOUT.pieces(self.kind).get(piece)
        if rel is not None:
            return self.path / rel
        return self._train_input(piece)

    def has(self, piece: str) -> bool:
        """Whether the run holds `piece` (one of PIECES), without loading it."""
        if piece == "metrics":
            return bool(self._metric_files())
        path = self.where(piece)
        if path is None:
            return False
        marker = _MARKERS.get(piece)
        return (path / marker).is_file() if marker else path.exists()

    def require(self, piece: str) -> Path:
        """Where `piece` is, or MissingPieceError (one line: the path and the command that
        makes it) when the run lacks it."""
        if not self.has(piece):
            raise self._missing(piece, self.where(piece))
        return self.where(piece)

    # ------------------------------------------------------------------ pieces

    def _result(self, piece: str, read: Callable[[Path], Any]) -> Any:
        """`piece`'s file read once, and again whenever its size or mtime changes: the app
        keeps one Run per process, and a steer-eval or steer-bench re-run while it serves
        must show its new results (models, which nothing rewrites in place, load once)."""
        path = self.require(piece)
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        hit = self._results.get(piece)
        if hit is None or hit[0] != stamp:
            hit = self._results[piece] = (stamp, read(path))
        return hit[1]

    @property
    def summary(self) -> dict[str, Any]:
        """summary.json: the pipeline's stage results, or the trainer's final numbers."""
        return self._result("summary", lambda p: read_json(
            p, "re-run the command that wrote it (the pipeline's last stage, or train)",
            expect=dict, fields=SUMMARY_FIELDS))

    @property
    def report(self) -> str:
        """REPORT.md text (pipeline runs)."""
        return self._result("report", lambda p: p.read_text())

    @property
    def steering(self) -> dict[str, Any]:
        """steering/steering.json: `steer-eval --densest`'s screen, sweeps and final
        evaluation (`training.steering_screen.DenseSteering.to_dict`)."""
        return self._result("steering", lambda p: read_json(
            p, self._maker("steering", self.where("steering")), expect=dict))

    @property
    def steer_bench(self) -> dict[str, Any]:
        """steering/bench/results.json: `cocomix-lens steer-bench`'s leaderboard of steering
        methods toward each world topic (training/steer_bench.py)."""
        return self._result("steer_bench", lambda p: read_json(
            p, self._maker("steer_bench", self.where("steer_bench")), expect=dict))

    @property
    def groundtruth(self) -> dict[str, Any]:
        """groundtruth.json (world runs): per source ("sae", "labels", "student") the best
        concept of every latent value and the best value of every concept, token- and
        sentence-level (`cocomix_lens.groundtruth.Recovery.summary`)."""
        return self._result("groundtruth", lambda p: read_json(
            p, "re-run the pipeline's groundtruth stage (delete the file first)",
            expect=dict, fields={"sources": dict}))

    @property
    def study(self) -> dict[str, Any]:
        """study/study.json (pipeline runs): `cocomix-lens study`'s curves, claims and
        ablations (read for people by report/study.py); NaN is stored as null."""
        rewrite = Remedy("study", {"run": self.path, "seeds": 3, "report_only": True},
                         verb="re-write it with")
        return self._result("study", lambda p: read_json(
            p, rewrite, expect=dict, fields={"claims": list, "curves": dict, "ablations": list}))

    @cached_property
    def tokenizer(self):
        """The run's `tokenizers.Tokenizer`."""
        from cocomix_lens.data.tokenizer import load_tokenizer

        return load_tokenizer(self.require("tokenizer"))

    @cached_property
    def student(self):
        """The CoCoMix student (a train run's model), eval mode, tokenizer attached."""
        return self._model("student")

    @cached_property
    def baseline(self):
        """The NTP baseline student of a pipeline run."""
        return self._model("baseline")

    @cached_property
    def teacher(self):
        """The teacher (a CoCoMixModel with mix_mode none) the labels came from."""
        return self._model("teacher")

    @cached_property
    def sae(self):
        """The SAE-Lens SAE on the teacher (hook: `sae.cfg.metadata.hook_name`)."""
        from cocomix_lens.concepts.teacher import load_sae

        return load_sae(self.require("sae"), device=self.device)

    @cached_property
    def labels(self):
        """The label cache (`cocomix_lens.concepts.LabelCache`)."""
        from cocomix_lens.concepts.label_cache import LabelCache

        return LabelCache.open(self.require("labels"))

    @cached_property
    def shards(self):
        """The token shards (`cocomix_lens.data.TokenShards`)."""
        from cocomix_lens.data.shards import TokenShards

        return TokenShards.open(self.require("shards"))

    @cached_property
    def catalogue(self):
        """The concept catalogue (`cocomix_lens.catalogue.Catalogue`): `run.catalogue[c]`;
        refused with a one-line error when the run's weights, labels or shards changed."""
        from cocomix_lens.catalogue.run import open_for_run

        return open_for_run(self)

    @cached_property
    def corpus(self) -> str | None:
        """The corpus the run's shards were prepared from ("world", "wiki", ...); None when
        the run has no shards or their manifest names none."""
        if not self.has("shards"):
            return None
        return (self.shards.manifest.get("corpus") or {}).get("source")

    def load_corpus_scorers(self) -> None:
        """Register the steering scorers of this run's corpus (the world's oracle scorers on a
        world run); `cocomix_lens.steering.scorers.scorers_for` calls it, so what a run is
        scored with does not depend on what the caller imported, and `steering/` never names
        a corpus."""
        if self.corpus == "world":
            import cocomix_lens.world.steering_scorers  # noqa: F401  (registers them)

    @cached_property
    def metrics(self) -> dict[str, list[dict[str, Any]]]:
        """Every metrics.jsonl of the run as records, keyed by stage ("train" for a train
        run). A torn last line (a run killed mid-write) is skipped."""
        files = self._metric_files()
        if not files:
            raise self._missing("metrics", self.where("metrics"))
        return {stage: _read_jsonl(path) for stage, path in files.items()}

    # ------------------------------------------------------------------ helpers

    def _model(self, piece: str):
        from cocomix_lens.model import CoCoMixModel

        model = CoCoMixModel.from_pretrained(self.require(piece), device=self.device)
        if model.tokenizer is None:  # a run's models read and write text: without its
            model.tokenizer = self.tokenizer  # tokenizer, the error names where it looked
        return model.eval()

    def _missing(self, piece: str, looked: Path | None) -> MissingPieceError:
        if looked is None:  # a train run has no teacher, SAE, report, ...
            make = Remedy("pipeline", {"out": "DIR"}, verb="run")
            return attach(MissingPieceError(
                f"run {self.path} has no {piece} (a run of the train step holds a model, "
                f"metrics and summary); fix: {make} for a run with every piece, and open DIR"),
                make)
        make = self._maker(piece, looked)
        return attach(MissingPieceError(f"run {self.path} has no {piece} (looked for "
                                        f"{looked}); fix: {make}"), make)

    def _maker(self, piece: str, looked: Path) -> Remedy:
        """The step (and its arguments) that makes `piece` at `looked`."""
        made_by = {
            "catalogue": ("catalog", {"run": self.path}),
            "steering": ("steer-eval", {"run": self.path, "densest": 10, "out": looked.parent}),
            "steer_bench": ("steer-bench", {"run": self.path}),
            "study": ("study", {"run": self.path, "seeds": 3}),
        }
        if piece in made_by:
            return Remedy(*made_by[piece], verb="run")
        if self.kind == "pipeline":
            return Remedy("pipeline", {"out": self.path}, verb="run")
        step, out = {"shards": ("prepare", looked), "labels": ("labels", looked)}.get(
            piece, ("train", self.path))
        return Remedy(step, {"out": out}, more=step != "prepare", verb="run")

    def _metric_files(self) -> dict[str, Path]:
        found = {stage: self.path / rel for stage, rel in LAYOUT.metrics(self.kind).items()}
        return {stage: p for stage, p in found.items() if p.is_file()}

    def _train_input(self, piece: str) -> Path | None:
        """A train run's shards / labels: the directories its config.yaml names."""
        key = {"shards": ("data", "dir"), "labels": ("concept", "labels")}.get(piece)
        if key is None:
            return None
        cfg = self._train_config
        value = (cfg.get(key[0]) or {}).get(key[1])
        return Path(value) if value else None

    @cached_property
    def _train_config(self) -> dict[str, Any]:
        path = self.path / LAYOUT.train.config
        if not path.is_file():
            return {}
        return read_yaml(path, Remedy("train", {"force": True}, more=True,
                                      verb="restore it or re-run"))


def check_device(device: str) -> str:
    """`device` if torch can use it here; else a one-line ValueError naming it (not a CUDA
    error about pinned memory minutes later)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r} is not a torch device; fix: device='cpu' or "
                         "'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here; fix: "
                         "device='cpu'")
    return device


def _kind(path: Path) -> str | None:
    p, t = LAYOUT.pipeline, LAYOUT.train
    if (path / p.config).is_file() or (path / p.stages).is_dir():
        return "pipeline"
    if any((path / rel).exists() for rel in (t.model, t.config, t.metrics, t.summary)):
        return "train"
    return None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # JSON lines: read_json's whole-file checks do not apply
            if i == len(lines) - 1:
                log.warning("%s: skipped a torn last line", path)
                continue
            raise ValueError(f"{path} line {i + 1} is not JSON; the file is damaged: delete "
                             "the line or re-run the stage") from None
    return records
