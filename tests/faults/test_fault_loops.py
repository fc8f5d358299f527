"""SIGKILL at random points of prepare, labels and train: re-running the same command each time
ends byte-identical to an uninterrupted run, with no temporary file or lock left behind (the
writers of a run, pipeline included, are the reliability matrix's SIGKILL rows:
matrix_writers.kill_rows, on these helpers). Marked `faults` (minutes); `make test` runs them
too (the marker only names them: `pytest -m "not faults"` skips them for a quick loop)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers_concepts import tiny_sae
from helpers_model import tiny_config
from helpers_training import make_shards
from warm_cli import zygote

from cocomix_lens import CoCoMixModel
from cocomix_lens.data import TokenShards, load_tokenizer
from cocomix_lens.data.files import is_temporary

pytestmark = pytest.mark.faults
REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "training.cli"]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run(argv: list[str]) -> float:
    """Run to completion; wall seconds."""
    t0 = time.perf_counter()
    done = subprocess.run(CLI + argv, env=ENV, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return time.perf_counter() - t0


def kill_once(argv: list[str], out: Path, span: float, rng: random.Random) -> float:
    """Start `argv` (forked from the warm `cocomix-lens`, warm_cli) and SIGKILL it after a
    random delay in [0, span] s. A kill drawn after the run had already finished is taken back
    (`out` restored as it was before the start) and drawn again within the time that run took,
    so every call lands a kill; returns the span for the kills after it (that time, if shorter:
    a fresh process's `span` includes its imports, which a forked one has done)."""
    backup = out.with_name(out.name + ".before")
    shutil.rmtree(backup, ignore_errors=True)
    if out.exists():
        shutil.copytree(out, backup, symlinks=True)
    while True:
        t0 = time.perf_counter()
        log = out.with_name(out.name + ".stderr")  # a file: a pipe could fill up
        proc = zygote(ENV).start(argv, log)
        delay = rng.uniform(0.0, span)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            shutil.rmtree(backup, ignore_errors=True)
            return span
        err = log.read_text(errors="replace")
        assert proc.returncode == 0, err[-3000:]  # a start that failed is a finding, not a miss
        span = time.perf_counter() - t0  # it finished sooner: draw within its own time
        shutil.rmtree(out, ignore_errors=True)
        if backup.exists():
            shutil.copytree(backup, out, symlinks=True)


def kill_loop(argv: list[str], out: Path, kills: int, span: float, seed: int) -> int:
    """SIGKILL `argv` (writing `out`) `kills` times at random moments of an uninterrupted run's
    `span` seconds (kill_once), then let it finish; returns the kills landed (all of them)."""
    rng = random.Random(seed)
    for _ in range(kills):
        span = kill_once(argv, out, span, rng)
    log = out.with_name(out.name + ".stderr")
    assert zygote(ENV).start(argv, log).wait() == 0, log.read_text(errors="replace")[-3000:]
    return kills


def files(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under root."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def assert_clean(root: Path) -> None:
    """No temporaries of killed writers, no locks of finished ones."""
    left = [str(p) for p in root.rglob("*") if is_temporary(p.name) or p.name == ".lock"
            or p.name.startswith(".tmp-step_")]
    assert not left, left


def loop_inputs(root: Path) -> Path:
    """Shards, a seeded teacher and an SAE under `root` (the kill loops' inputs); the shards.
    150 documents: labels at one window a batch commits ~860 times in ~4 s of a forked run
    (400 documents: ~2,200 commits in ~11 s, for no other kind of moment to kill in)."""
    shards = make_shards(root, n_docs=150)
    vocab = TokenShards.open(shards).vocab_size
    torch.manual_seed(0)
    teacher = CoCoMixModel(tiny_config(d_vocab=vocab, n_ctx=32, n_layers=2, mix_mode="none"))
    teacher.save_pretrained(root / "teacher", tokenizer=load_tokenizer(shards / "tokenizer.json"))
    tiny_sae(d_in=32, hook="blocks.0.hook_resid_post").save_model(root / "sae")
    return shards


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("loops")
    return root, loop_inputs(root)


def _identical(tmp: Path, argv_for, kills: int, seed: int, ignore=()) -> int:
    span = run(argv_for(tmp / "ref"))
    killed = kill_loop(argv_for(tmp / "hit"), tmp / "hit", kills, span, seed)
    ref, hit = files(tmp / "ref"), files(tmp / "hit")
    for name in ignore:
        ref.pop(name, None), hit.pop(name, None)
    assert ref.keys() == hit.keys()
    assert [k for k in ref if ref[k] != hit[k]] == []
    assert_clean(tmp / "hit")
    return killed


def test_prepare_killed_anywhere_resumes_to_identical_bytes(inputs, tmp_path):
    root, _ = inputs
    argv = lambda out: ["prepare", "--corpus", "text", "--path", str(root / "corpus.txt"),
                        "--separator", "\\n\\n", "--vocab-size", "300", "--out", str(out)]
    _identical(tmp_path, argv, kills=4, seed=1)


def test_labels_killed_anywhere_resumes_to_identical_bytes(inputs, tmp_path):
    root, shards = inputs
    argv = lambda out: ["labels", "--data", str(shards), "--teacher", str(root / "teacher"),
                        "--sae", str(root / "sae"), "--out", str(out), "--k", "2", "--window",
                        "16", "--batch-size", "1"]
    _identical(tmp_path, argv, kills=4, seed=2)


def test_train_killed_anywhere_resumes_to_identical_bytes(inputs, tmp_path):
    _, shards = inputs
    argv = lambda out: ["train", "--objective", "ntp", "--data", str(shards), "--out", str(out),
                        "--resume", "--max-steps", "30", "--data.seq_len", "16",
                        "--data.batch_size", "4", "--model.d_model", "32", "--model.n_layers",
                        "2", "--model.n_heads", "2", "--model.n_ctx", "32",
                        "--logging.progress", "false", "--logging.eval_every", "5",
                        "--logging.eval_batches", "1", "--checkpoint.every", "2"]
    # summary.json holds wall times and metrics.jsonl tokens/s: compared without them.
    _identical(tmp_path, argv, kills=6, seed=3, ignore=("summary.json", "metrics.jsonl"))
    rows = [[{k: v for k, v in json.loads(line).items() if k != "tokens_per_s"}
             for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
            for run in ("ref", "hit")]
    assert len(rows[0]) == 9 and rows[0] == rows[1]  # 3 train (every 10) + 6 val rows
