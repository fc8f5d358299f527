"""Seeded CoCoMix training is repeatable across fresh processes: the same seed gives the same
losses (bit for bit) and the same weights, whatever the hash seed, the address layout or which
compressor path (gather + bmm, or embedding_bag) runs, with two intra-op threads.

Three fresh processes (hash seeds 0, 1, 2) each compute every check's result once: on-the-fly
labels, then a seeded run on each compressor path; each test compares its own result across
the three. (A fresh process spends most of its time importing torch and TransformerLens: one
per hash seed, not one per check and hash seed.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_training import make_shards

REPO = Path(__file__).resolve().parents[2]

# Prints one JSON line: the labels' sha256, and per compressor path the per-step losses as
# float.hex and the weights' sha256 of one seeded CoCoMix run.
SCRIPT = """
import hashlib, json, sys
import cocomix_lens.model.concept as concept
from helpers_concepts import tiny_hooked_transformer, tiny_sae, tokens
from helpers_training import TokenLabels, tiny_run
from cocomix_lens.concepts import ConceptExtractor
from training.trainer import train


def labels():
    ex = ConceptExtractor(tiny_hooked_transformer(), tiny_sae())
    ids, scores = ex.labels(tokens(batch=4, pos=24), k=4)
    return hashlib.sha256(ids.numpy().tobytes() + scores.numpy().tobytes()).hexdigest()


def cocomix(out):
    cfg = tiny_run(sys.argv[1], "cocomix", steps=4, **{"model.n_concepts": 64,
                   "model.concept_top_k": 8, "checkpoint.every": 100,
                   "logging.eval_every": 100})
    train(cfg, data=sys.argv[1], labels=TokenLabels(64), out_dir=out)
    rows = [json.loads(x) for x in open(out + "/metrics.jsonl")]
    losses = [(r["loss"].hex(), r["concept"].hex(), r["ntp"].hex()) for r in rows
              if r["split"] == "train"]
    blob = open(out + "/model/model.safetensors", "rb").read()
    return {"losses": losses, "weights": hashlib.sha256(blob).hexdigest()}


done = {"labels": labels(), "bmm": cocomix(sys.argv[2] + "-bmm")}
concept.BMM_GATHER_MAX = 0  # force the embedding_bag compressor
done["bag"] = cocomix(sys.argv[2] + "-bag")
print(json.dumps(done))
"""
# labels: on-the-fly labels (teacher forward + backward to the SAE hook, then top-k
# attribution): the concept loss of a first step depends on them and not the NTP loss.


def _python(code: str, *args: str, hash_seed: int) -> str:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}",
           "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "PYTHONHASHSEED": str(hash_seed)}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def fresh_runs(tmp_path_factory) -> list[dict]:
    """Each of three fresh processes' results (SCRIPT), hash seeds 0, 1 and 2."""
    tmp = tmp_path_factory.mktemp("determinism")
    shards = make_shards(tmp)
    return [json.loads(_python(SCRIPT, str(shards), str(tmp / f"run{i}"), hash_seed=i))
            for i in range(3)]


def test_on_the_fly_labels_repeat_bitwise_in_fresh_processes(fresh_runs):
    runs = [r["labels"] for r in fresh_runs]
    assert runs == runs[:1] * 3


@pytest.mark.faults
@pytest.mark.parametrize("path", ["bmm", "bag"])
def test_seeded_cocomix_steps_repeat_bitwise_in_fresh_processes(fresh_runs, path):
    runs = [r[path] for r in fresh_runs]
    assert len(runs[0]["losses"]) == 4
    assert all(r == runs[0] for r in runs[1:]), runs
