"""Seeded CoCoMix training is repeatable across fresh processes: the same seed gives the same
losses (bit for bit) and the same weights, whatever the hash seed, the address layout or which
compressor path (gather + bmm, or embedding_bag) runs, with two intra-op threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_training import make_shards

REPO = Path(__file__).resolve().parents[2]

# One seeded CoCoMix run; prints the per-step losses as float.hex and the weights' sha256.
SCRIPT = """
import hashlib, json, sys
import cocomix_lens.model.concept as concept
from helpers_training import TokenLabels, tiny_run
from training.trainer import train
if sys.argv[3] == "bag":
    concept.BMM_GATHER_MAX = 0  # force the embedding_bag compressor
cfg = tiny_run(sys.argv[1], "cocomix", steps=4, **{"model.n_concepts": 64,
               "model.concept_top_k": 8, "checkpoint.every": 100, "logging.eval_every": 100})
out = sys.argv[2]
train(cfg, data=sys.argv[1], labels=TokenLabels(64), out_dir=out)
rows = [json.loads(x) for x in open(out + "/metrics.jsonl")]
losses = [(r["loss"].hex(), r["concept"].hex(), r["ntp"].hex()) for r in rows
          if r["split"] == "train"]
blob = open(out + "/model/model.safetensors", "rb").read()
print(json.dumps({"losses": losses, "weights": hashlib.sha256(blob).hexdigest()}))
"""


# On-the-fly labels (teacher forward + backward to the SAE hook, then top-k attribution): the
# concept loss of a first step depends on them and not the NTP loss.
LABELS = """
import hashlib, torch
from helpers_concepts import tiny_hooked_transformer, tiny_sae, tokens
from cocomix_lens.concepts import ConceptExtractor
ex = ConceptExtractor(tiny_hooked_transformer(), tiny_sae())
ids, scores = ex.labels(tokens(batch=4, pos=24), k=4)
print(hashlib.sha256(ids.numpy().tobytes() + scores.numpy().tobytes()).hexdigest())
"""


def _python(code: str, *args: str, hash_seed: int) -> str:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}",
           "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "PYTHONHASHSEED": str(hash_seed)}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_on_the_fly_labels_repeat_bitwise_in_fresh_processes():
    runs = [_python(LABELS, hash_seed=i) for i in range(3)]
    assert runs == runs[:1] * 3


def _run(shards: Path, out: Path, path: str, hash_seed: int) -> dict:
    return json.loads(_python(SCRIPT, str(shards), str(out), path, hash_seed=hash_seed))




@pytest.mark.faults
@pytest.mark.parametrize("path", ["bmm", "bag"])
def test_seeded_cocomix_steps_repeat_bitwise_in_fresh_processes(tmp_path, path):
    shards = make_shards(tmp_path)
    runs = [_run(shards, tmp_path / f"run{i}", path, hash_seed=i) for i in range(3)]
    assert len(runs[0]["losses"]) == 4
    assert all(r == runs[0] for r in runs[1:]), runs
