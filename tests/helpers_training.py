"""Tiny seeded shards, label sources and run configs shared by the training tests."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from training.config import RunConfig, load_config
from training.pipeline_config import apply_overrides, pipeline_preset

WORDS = ("the cat sat on a mat while dogs ran in the park and birds sang songs of "
         "summer rain over hills near rivers where children played").split()


def make_shards(root: Path, n_docs: int = 120, vocab_size: int = 300, seed: int = 0) -> Path:
    """A prepared shard directory of random short documents (offline, seconds)."""
    from training.corpus import open_corpus, prepare_shards

    rng = random.Random(seed)
    src = root / "corpus.txt"
    docs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))
            for _ in range(n_docs)]
    src.write_text("\n\n".join(docs))
    out = root / "shards"
    prepare_shards(open_corpus("text", path=src, separator="\n\n"), out,
                   vocab_size=vocab_size, val_fraction=0.1)
    return out


class TokenLabels:
    """A LabelSource whose labels are a fixed function of the token: (x * 7 + 3j) mod C."""

    align = 1

    def __init__(self, n_concepts: int = 32, k: int = 4):
        self.n_concepts, self.k = n_concepts, k

    def get(self, split: str, starts: np.ndarray, x: torch.Tensor,
            y: torch.Tensor | None = None) -> torch.Tensor:
        j = torch.arange(self.k, device=x.device)
        return (x[..., None] * 7 + 3 * j) % self.n_concepts


def tiny_run(data: Path | None = None, objective: str = "ntp", steps: int = 6,
             **dotted) -> RunConfig:
    """A CPU-sized run config: 2-layer d=32 model, 4 windows of 16 tokens per step."""
    over = {"objective": objective, "optim.max_steps": steps, "data.seq_len": 16,
            "data.batch_size": 4, "model.d_model": 32, "model.n_layers": 2,
            "model.n_heads": 2, "model.n_ctx": 32, "model.insert_layer": 1,
            "model.n_concepts": 32, "model.concept_top_k": 4, "logging.progress": False,
            "logging.log_every": 1, "logging.eval_every": 3, "logging.eval_batches": 2,
            "checkpoint.every": 3, "system.device": "cpu", "optim.warmup_steps": 2}
    if data is not None:
        over["data.dir"] = str(data)
    over.update({k.replace("__", "."): v for k, v in dotted.items()})
    return load_config(None, overrides=over)


TOPICS = {
    "sea": "ship wave harbor sailor anchor tide boat fish salt storm coast",
    "space": "star planet orbit rocket moon galaxy comet telescope astronaut light",
    "food": "bread cheese soup kitchen recipe oven salt sugar apple dinner",
    "music": "song guitar piano rhythm melody concert drum singer chord band",
}


def write_corpus(root: Path, n_docs: int = 240, seed: int = 0) -> Path:
    """Topical toy documents: each draws most words from one topic's vocabulary."""
    rng = random.Random(seed)
    glue = "the a of and in to was is with on".split()
    root.mkdir(parents=True)
    lines = []
    for i in range(n_docs):
        topic = rng.choice(sorted(TOPICS))
        words = TOPICS[topic].split()
        text = " ".join(rng.choice(words) if rng.random() < 0.6 else rng.choice(glue)
                        for _ in range(rng.randint(40, 80)))
        lines.append(json.dumps({"text": text.capitalize() + ".", "topic": topic,
                                 "id": f"doc{i}"}))
    (root / "docs.jsonl").write_text("\n".join(lines) + "\n")
    return root


def micro_config(corpus: Path):
    return apply_overrides(pipeline_preset("micro"),
                           {"data.corpus": "text", "data.path": str(corpus),
                            "data.max_docs": "none"})


def copy_run(out: Path, tmp: Path, checkpoints: bool = False) -> Path:
    """A copy of a run directory at tmp/run, for tests that change a shared session run;
    without its checkpoints unless a test resumes from them (they are most of its bytes)."""
    dst = tmp / "run"
    shutil.copytree(out, dst, ignore=None if checkpoints else shutil.ignore_patterns("checkpoints"))
    return dst


def micro_pipeline_run(root: Path):
    """A finished `micro` pipeline run on the topical corpus, under root: (cfg, out, summary)."""
    from training.pipeline import run_pipeline

    cfg = micro_config(write_corpus(root / "corpus"))
    out = root / "run"
    return cfg, out, run_pipeline(cfg, out)


class CommittedBench:
    """A committed steer-bench (benchmarks/results/NAME/results.json) and its rows' harmonic
    means as the README and docs/steering.md quote them."""

    def __init__(self, name: str):
        self.root = Path(__file__).resolve().parents[1]
        self.results = json.loads((self.root / "benchmarks" / "results" / name
                                   / "results.json").read_text())
        self.rows, self.best = self.results["rows"], self.results["best"]

    def est(self, key: str) -> str:
        """'mean [lo, hi]' of the row's harmonic mean."""
        from cocomix_lens.steering.stats import Estimate

        return Estimate.from_dict(self.rows[key]["summary"]["harmonic"]).format(decimals=3)

    def mean(self, key: str) -> str:
        return f"{self.rows[key]['summary']['harmonic']['mean']:.3f}"

    def readme_line(self, marker: str) -> str:
        """The README's results row holding `marker`, bold marks removed."""
        readme = (self.root / "README.md").read_text()
        return next(x for x in readme.splitlines() if marker in x).replace("**", "")

    def docs(self) -> str:
        return (self.root / "docs" / "steering.md").read_text()
