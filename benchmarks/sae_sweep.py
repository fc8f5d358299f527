"""SAE settings vs how well the SAE's latents recover the world's variables, on one world run's
teacher: the teacher's activations are collected once (cached to --cache), then each setting
trains an SAE with SAE-Lens (training.sae.train_sae, as the pipeline does), saves and reloads
it, and scores it like the pipeline's groundtruth stage (top-k active latents on the first
32,768 validation tokens; sentence-scoped variables pooled per sentence).

    .venv/bin/python benchmarks/sae_sweep.py --run runs/demo --cache /tmp/sae-cache
    .venv/bin/python benchmarks/sae_sweep.py --run runs/demo --only k16-batchtopk

Prints one JSON line per setting: topic coverage (share of topic values whose best latent has
sentence-level F1 >= 0.8), mean best topic F1, coverage of every variable, dead latents (on
the validation activations), variance explained and training seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from training.pipeline_config import pipeline_preset
from training.pipeline_groundtruth import MAX_TOKENS
from training.sae import collect_activations, sae_quality, save_sae, train_sae

# Settings start from the world preset's SAE as TopK (its default before the sweep); results
# of one run in benchmarks/results/sae_sweep_world.jsonl (its early matryoshka rows name the
# nested widths, matryoshka_widths, before they became matryoshka_first).
WORLD = dataclasses.replace(pipeline_preset("world").sae, architecture="topk")
SETTINGS = {
    "base": {},
    "k16": {"k": 16},
    "k32": {"k": 32},
    "batchtopk-k8": {"architecture": "batchtopk"},
    "batchtopk-k16": {"architecture": "batchtopk", "k": 16},
    "batchtopk-k32": {"architecture": "batchtopk", "k": 32},
    "d256-k16": {"d_sae": 256, "k": 16},
    "b3-k16": {"hook": "blocks.3.hook_resid_post", "k": 16},
    "b1-k16": {"hook": "blocks.1.hook_resid_post", "k": 16},
    "mat16-k8": {"architecture": "matryoshka_batchtopk", "matryoshka_first": 16},
}


def val_activations(teacher, shards, hook: str, seq_len: int) -> torch.Tensor:
    """[N, d] activations of the groundtruth stage's tokens: the first windows of val."""
    from cocomix_lens.concepts.capture import activation_at
    from cocomix_lens.data.shards import gather_windows

    tokens = shards.split("val")
    starts = np.arange(min(len(tokens), MAX_TOKENS) // seq_len) * seq_len
    out = []
    for i in range(0, len(starts), 16):
        x = torch.from_numpy(gather_windows(tokens, starts[i:i + 16], seq_len).astype(np.int64))
        out.append(activation_at(teacher, hook, x).reshape(-1, teacher.cfg.d_model).float())
    return torch.cat(out)


def cached(path: Path, make):
    if path.is_file():
        return torch.load(path)
    value = make()
    torch.save(value, path)
    return value


def score(sae, acts: torch.Tensor, k: int | None, truth, units) -> dict:
    """Coverage and mean best F1 per variable (sentence-pooled where sentence-scoped); a
    latent fires among the top k active (the groundtruth stage), or when > 0 (k None)."""
    from cocomix_lens.groundtruth import Recovery, pool_units
    from cocomix_lens.world import SENTENCE_VARIABLES

    with torch.no_grad():
        z = torch.cat([sae.encode(acts[i:i + 4096]) for i in range(0, len(acts), 4096)])
    vals, ids = z.topk(k or int((z > 0).sum(-1).max()), dim=-1)
    active = torch.where(vals > 0, ids, -1).numpy()
    n_c = z.shape[1]
    tok = {v: c for v, c in truth.items() if v not in SENTENCE_VARIABLES}
    sent = {v: c for v, c in truth.items() if v in SENTENCE_VARIABLES}
    out = {}
    for rec in (Recovery.from_active(active, tok, n_c),
                Recovery.from_active(*pool_units(active, units, sent), n_c)):
        cov = rec.coverage()
        summ = rec.summary()["variables"]
        for v in rec.f1:
            out[v] = {"coverage": round(cov[v], 3),
                      "mean_best_f1": round(summ[v]["mean_best_f1"] or 0.0, 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="a world pipeline run (teacher + data)")
    ap.add_argument("--cache", default="/tmp/sae-cache", help="activation cache directory")
    ap.add_argument("--only", nargs="*", help="settings to run (default: the --set ones, or all)")
    ap.add_argument("--set", nargs="*", default=[],
                    help="extra setting as name:json, e.g. 'x:{\"k\": 24}'")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from cocomix_lens.concepts import load_sae
    from cocomix_lens.data.truth import GroundTruth
    from cocomix_lens.rundir import Run
    from training.pipeline_groundtruth import sentence_units

    run, cache = Run.open(args.run), Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    teacher, shards = run.teacher, run.shards
    seq_len = json.loads((run.path / "pipeline.json").read_text())["seq_len"]
    gt = GroundTruth.open(run.require("shards"))
    extra = dict(spec.split(":", 1) for spec in args.set)
    settings = {**SETTINGS, **{name: json.loads(js) for name, js in extra.items()}}
    for name in args.only or list(extra) or settings:
        cfg = dataclasses.replace(WORLD, **settings[name])
        tag = cfg.hook.replace(".", "_")
        train = cached(cache / f"train_{tag}_{cfg.train_tokens}.pt", lambda: collect_activations(
            teacher, shards.split("train"), cfg.hook, cfg.train_tokens, seq_len, cfg.seed))
        val = cached(cache / f"val_{tag}.pt",
                     lambda: val_activations(teacher, shards, cfg.hook, seq_len))
        n = len(val)
        truth = {v: (gt.column("val", v)[:n], gt.values(v)) for v in gt.columns}
        units = sentence_units(shards, n)
        t0 = time.perf_counter()
        sae = train_sae(train, cfg.hook, cfg)
        wall = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            saved = load_sae(save_sae(sae, Path(tmp) / "sae"))
        q = sae_quality(saved, val)
        res = score(saved, val, cfg.k, truth, units)
        every = score(saved, val, None, truth, units)["topic"]
        print(json.dumps({"setting": name, **settings[name],
                          "topic_coverage": res["topic"]["coverage"],
                          "topic_mean_best_f1": res["topic"]["mean_best_f1"],
                          "dead_fraction": round(q["dead_fraction"], 3),
                          "variance_explained": round(q["variance_explained"], 3),
                          "l0": round(q["l0"], 2), "train_s": round(wall, 1),
                          "topic_coverage_all_active": every["coverage"],
                          "topic_mean_best_f1_all_active": every["mean_best_f1"],
                          "coverage": {v: r["coverage"] for v, r in res.items()}}), flush=True)


if __name__ == "__main__":
    main()
