"""Shared set-up of the fault matrix (tests/faults/test_faults.py,
tests/faults/test_faults_library.py): a small world (shards, teacher, SAE, label cache, a finished
run) and file-damaging helpers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from helpers_concepts import tiny_sae
from helpers_model import tiny_config
from helpers_training import make_shards

from cocomix_lens import CoCoMixModel
from cocomix_lens.data import TokenShards, load_tokenizer
from training.cli import main

REPO = Path(__file__).resolve().parents[2]
TINY = ["--data.seq_len", "16", "--data.batch_size", "4", "--model.d_model", "32",
        "--model.n_layers", "2", "--model.n_heads", "2", "--model.n_ctx", "32",
        "--model.insert_layer", "1", "--model.n_concepts", "48", "--logging.progress", "false",
        "--logging.eval_batches", "1", "--logging.eval_every", "3", "--checkpoint.every", "3",
        "--checkpoint.keep_last", "2", "--system.device", "cpu"]


@dataclass
class World:
    root: Path
    shards: Path
    teacher: Path
    sae: Path
    labels: Path
    run: Path  # a finished 6-step NTP run with checkpoints at steps 3 and 6


def build_world(tmp_path_factory) -> World:
    """The shared world; tests/faults/conftest.py builds it once per session (`world`)."""
    root = tmp_path_factory.mktemp("world")
    shards = make_shards(root)
    vocab = TokenShards.open(shards).vocab_size
    torch.manual_seed(0)
    teacher = CoCoMixModel(tiny_config(d_vocab=vocab, n_ctx=32, n_layers=2, mix_mode="none"))
    teacher.save_pretrained(root / "teacher", tokenizer=load_tokenizer(shards / "tokenizer.json"))
    tiny_sae(d_in=32, hook="blocks.0.hook_resid_post").save_model(root / "sae")
    w = World(root, shards, root / "teacher", root / "sae", root / "labels", root / "run")
    assert main(labels_argv(w, w.labels)) == 0
    assert main(train_argv(w, w.run, "--objective", "ntp", "--max-steps", "6")) == 0
    return w


def labels_argv(w: World, out: Path, *extra: str) -> list[str]:
    return ["labels", "--data", str(w.shards), "--teacher", str(w.teacher), "--sae",
            str(w.sae), "--out", str(out), "--k", "2", "--window", "16", *extra]


def train_argv(w: World, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(w.shards), "--out", str(out), *TINY, *extra]


def messages(stderr: str) -> str:
    """stderr without tqdm progress bars (they also go to stderr, and are not messages)."""
    return "\n".join(line for line in stderr.splitlines()
                     if line.strip() and not re.search(r"\[\d\d:\d\d", line)).strip()


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def flip_byte(path: Path, at: int = 3) -> None:
    """Corrupt a file without changing its size."""
    blob = bytearray(path.read_bytes())
    blob[at] ^= 0xFF
    path.write_bytes(bytes(blob))


def truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def edit_json(path: Path, **changes) -> None:
    blob = json.loads(path.read_text())
    blob.update(changes)
    path.write_text(json.dumps(blob))


def other_tokenizer_shards(w: World, tmp: Path) -> Path:
    """Shards of the same vocabulary size from a different tokenizer (a shuffled vocab)."""
    out = copy(w.shards, tmp / "other")
    tok = json.loads((out / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    keys = sorted(vocab)
    ids = sorted(vocab.values())
    tok["model"]["vocab"] = dict(zip(keys, ids[1:] + ids[:1]))
    (out / "tokenizer.json").write_text(json.dumps(tok))
    from cocomix_lens.data import tokenizer_sha256

    edit_json(out / "manifest.json",
              tokenizer_sha256=tokenizer_sha256(load_tokenizer(out / "tokenizer.json")))
    return out


class Holder:
    """Another process holding the lock of a directory (its PID must be named)."""

    def __init__(self, directory: Path):
        code = ("import sys, time; from cocomix_lens.data.lock import DirLock\n"
                f"with DirLock({str(directory)!r}):\n    print('held', flush=True)\n"
                "    time.sleep(120)\n")
        self.proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO,
                                     stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(REPO)})
        assert self.proc.stdout.readline().strip() == "held"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()



def corrupt_shard(w: World, tmp: Path) -> Path:
    d = copy(w.shards, tmp / "s")
    flip_byte(d / "train.bin", 100)
    return d
