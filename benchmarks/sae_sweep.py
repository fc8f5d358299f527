"""SAE settings vs how well the SAE's latents recover the world's variables, on one world run's
teacher: the teacher's activations are collected once (cached to --cache), then each setting
trains an SAE with SAE-Lens (training.sae.train_sae, as the pipeline does), saves and reloads
it, and scores it like the pipeline's groundtruth stage (top-k active latents on the first
32,768 validation tokens; sentence-scoped variables pooled per sentence).

    .venv/bin/python benchmarks/sae_sweep.py --run runs/demo --cache /tmp/sae-cache
    .venv/bin/python benchmarks/sae_sweep.py --run runs/demo --only jumprelu-k4-pre1
    .venv/bin/python benchmarks/sae_sweep.py --run runs/demo --ceiling blocks.2.hook_resid_post

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
    # per-latent thresholds: a TopK topic latent also fires weakly on other topics' sentences
    # (one such token spoils the sentence), a JumpReLU threshold cuts those firings
    "jumprelu-k8": {"architecture": "jumprelu"},
    "jumprelu-k8-pre1": {"architecture": "jumprelu", "pre_act_loss": 0.1},
    "jumprelu-k4": {"architecture": "jumprelu", "k": 4},
    "jumprelu-k4-pre1": {"architecture": "jumprelu", "k": 4, "pre_act_loss": 0.1},
    "standard-l1-3": {"architecture": "standard", "sparsity": 3.0},
    "gated-l1-3": {"architecture": "gated", "sparsity": 3.0},
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


def encode(sae, acts: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([sae.encode(acts[i:i + 4096]) for i in range(0, len(acts), 4096)])


def gated(z: torch.Tensor, frac: float) -> torch.Tensor:
    """Codes [N, d_sae] with each latent's activations below frac x its largest zeroed."""
    return torch.where(z > frac * z.max(0).values, z, 0.0)


def score(z: torch.Tensor, k: int | None, truth, units) -> dict:
    """Coverage and mean best F1 per variable (sentence-pooled where sentence-scoped) of
    codes z [N, d_sae]; a latent fires among the top k active (the groundtruth stage), or
    when > 0 (k None)."""
    from cocomix_lens.groundtruth import Recovery, pool_units
    from cocomix_lens.world import SENTENCE_VARIABLES

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


def direction_ceiling(run, shards, gt, hook: str, seq_len: int, n_fit: int = 65_536) -> dict:
    """The best a single direction per topic does under the groundtruth stage's rule: a ridge
    probe's one-vs-rest column (fitted on the first n_fit train tokens) "fires" on a token
    when its score passes a threshold, detects a sentence when it fires on any of its tokens;
    the threshold is the best for each topic on the scored tokens (an upper bound)."""
    from training.pipeline_groundtruth import hook_features, sentence_units
    from training.sampler import sequential_starts
    from training.study.measure import ridge_probe_scores

    fit = sequential_starts(shards.n_tokens("train"), seq_len, limit=n_fit // seq_len)
    x_fit = hook_features(run.teacher, shards, "train", fit, seq_len, hook)
    y_fit = gt.column("train", "topic")[(fit[:, None] + np.arange(seq_len)).reshape(-1)]
    val = val_activations(run.teacher, shards, hook, seq_len)
    names = gt.values("topic")
    units = sentence_units(shards, len(val))
    topic = np.asarray(gt.column("val", "topic")[:len(val)], dtype=np.int64)
    sentence = -np.ones(int(units[-1]) + 1, dtype=np.int64)
    sentence[units[topic >= 0]] = topic[topic >= 0]
    none = len(names)
    scores = ridge_probe_scores(x_fit, np.where(y_fit >= 0, y_fit, none).astype(np.int64),
                                val, none + 1).numpy()
    f1 = {name: round(best_threshold_f1(scores[:, j], units, sentence == j), 3)
          for j, name in enumerate(names)}
    return {"setting": "ceiling-direction", "hook": hook,
            "topic_coverage": round(float(np.mean([f >= 0.8 for f in f1.values()])), 3),
            "topic_mean_best_f1": round(float(np.mean(list(f1.values()))), 3), "f1": f1}


def best_threshold_f1(score: np.ndarray, units: np.ndarray, held: np.ndarray) -> float:
    """Best sentence-level F1 over thresholds of a token score [N] (a sentence is detected
    when its highest token passes), 0 when no better than detecting every sentence."""
    top = np.full(len(held), -np.inf)
    np.maximum.at(top, units, score)
    hits = np.cumsum(held[np.argsort(-top, kind="stable")])
    f1 = 2 * hits / (np.arange(1, len(held) + 1) + held.sum())
    p = held.mean()
    return float(f1.max()) if f1.max() > 2 * p / (1 + p) else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="a world pipeline run (teacher + data)")
    ap.add_argument("--cache", default="/tmp/sae-cache", help="activation cache directory")
    ap.add_argument("--only", nargs="*", help="settings to run (default: the --set ones, or all)")
    ap.add_argument("--set", nargs="*", default=[],
                    help="extra setting as name:json, e.g. 'x:{\"k\": 24}'")
    ap.add_argument("--ceiling", nargs="*", default=[], metavar="HOOK",
                    help="instead of SAEs: the single-direction topic ceiling at these hooks")
    ap.add_argument("--gate", nargs="*", type=float, default=[], metavar="FRAC",
                    help="also score each SAE with a latent counted only above FRAC x its "
                         "largest activation on the scored tokens (a diagnosis, not an SAE)")
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
    for hook in args.ceiling:
        print(json.dumps(direction_ceiling(run, shards, gt, hook, seq_len)), flush=True)
    if args.ceiling:
        return
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
        z = encode(saved, val)
        res = score(z, cfg.k, truth, units)
        every = score(z, None, truth, units)["topic"]
        gates = {str(f): {"topic_coverage": g["coverage"], "topic_mean_best_f1":
                          g["mean_best_f1"]} for f in args.gate
                 for g in [score(gated(z, f), cfg.k, truth, units)["topic"]]}
        print(json.dumps({"setting": name, **settings[name],
                          "topic_coverage": res["topic"]["coverage"],
                          "topic_mean_best_f1": res["topic"]["mean_best_f1"],
                          "dead_fraction": round(q["dead_fraction"], 3),
                          "variance_explained": round(q["variance_explained"], 3),
                          "l0": round(q["l0"], 2), "train_s": round(wall, 1),
                          "topic_coverage_all_active": every["coverage"],
                          "topic_mean_best_f1_all_active": every["mean_best_f1"],
                          "coverage": {v: r["coverage"] for v, r in res.items()},
                          **({"gated": gates} if gates else {})}), flush=True)


if __name__ == "__main__":
    main()
