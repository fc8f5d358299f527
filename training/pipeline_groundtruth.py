"""The pipeline's `groundtruth` stage: on a corpus with known latents (the world), how well
the SAE latents, the teacher's attribution labels and the CoCoMix student's predicted
concepts recover them (cocomix_lens.groundtruth), and whether the students' sampled text
parses (cocomix_lens.world). Other corpora skip it.

Writes `groundtruth.json` (every value's best concept and every concept's best value, per
source) into the run directory; the stage result keeps the coverage figures for the report.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from cocomix_lens.data.files import atomic_write_json
from cocomix_lens.groundtruth import GROUNDTRUTH_FILE

log = logging.getLogger(__name__)

MAX_TOKENS = 32_768  # validation tokens scored (sequential windows)
SAMPLES = 32  # sampled texts per student
SAMPLE_TOKENS = 96
HEADLINE = ("topic", "character", "place", "quantity", "tense", "sentiment")


def _windows(n_tokens: int, seq_len: int) -> np.ndarray:
    return np.arange(min(n_tokens, MAX_TOKENS) // seq_len) * seq_len


def _batched(starts: np.ndarray, size: int = 16):
    for i in range(0, len(starts), size):
        yield starts[i:i + size]


@torch.no_grad()
def sae_active(ctx: Any, shards: Any, starts: np.ndarray) -> np.ndarray:
    """int [N, k]: the SAE's active latents per validation token (-1 where fewer fire)."""
    from cocomix_lens.concepts import ConceptExtractor

    pair = ctx.teacher_pair()
    ex = ConceptExtractor(pair.model, pair.sae, method="activation")
    k = ctx.cfg.sae.k
    out = []
    for batch in _batched(starts):
        x, _ = shards.batch("val", batch, ctx.cfg.seq_len)
        ids, scores = ex.labels(x.to(ctx.cfg.device), k=k)
        out.append(torch.where(scores > 0, ids, -1).reshape(-1, k).cpu().numpy())
    return np.concatenate(out)


@torch.no_grad()
def student_active(model: Any, shards: Any, starts: np.ndarray, seq_len: int,
                   k: int) -> np.ndarray:
    """int [N, k]: the student's top-k concept logits per validation token."""
    out = []
    for batch in _batched(starts):
        x, _ = shards.batch("val", batch, seq_len)
        _, z = model(x.to(model.device), return_concept_logits=True)
        out.append(z.topk(k, dim=-1).indices.reshape(-1, k).cpu().numpy())
    return np.concatenate(out)


def sample_texts(model: Any, shards: Any, n: int, new_tokens: int, seed: int) -> list[str]:
    """`n` texts sampled at temperature 1 from the start of a document (after EOS)."""
    prompt = torch.full((n, 1), shards.eos_id, dtype=torch.long)
    new_tokens = min(new_tokens, model.cfg.n_ctx - 1)
    ids = model.generate(prompt.to(model.device), new_tokens, temperature=1.0, seed=seed)
    eos = shards.eos_id
    texts = []
    for row in ids[:, 1:].tolist():
        # The sample's first document only: what follows an EOS is another document.
        texts.append(shards.decode(row[:row.index(eos)] if eos in row else row))
    return texts


def stage_groundtruth(ctx: Any) -> dict[str, Any]:
    from cocomix_lens import CoCoMixModel
    from cocomix_lens.concepts import LabelCache
    from cocomix_lens.data.truth import GroundTruth
    from cocomix_lens.groundtruth import Recovery
    from cocomix_lens.world import form_share, grammatical_share

    data = ctx.dir("shards")
    if not GroundTruth.exists(data):
        return {"available": False, "reason": "the corpus has no per-token ground truth"}
    truth, shards, cfg = GroundTruth.open(data), ctx.shards(), ctx.cfg
    starts = _windows(shards.n_tokens("val"), cfg.seq_len)
    n = len(starts) * cfg.seq_len
    cols = {v: (truth.column("val", v)[:n], truth.values(v)) for v in truth.columns}
    models = {name: CoCoMixModel.from_pretrained(ctx.dir(piece), device=cfg.device).eval()
              for name, piece in (("cocomix", "student"), ("ntp", "baseline"))}
    active = {"sae": sae_active(ctx, shards, starts),
              "labels": np.asarray(LabelCache.open(ctx.dir("labels")).array("val", "ids")[:n],
                                   dtype=np.int64),
              "student": student_active(models["cocomix"], shards, starts, cfg.seq_len,
                                        cfg.labels.k)}
    n_concepts = cfg.sae.d_sae
    summaries = {src: Recovery.from_active(a, cols, n_concepts).summary()
                 for src, a in active.items()}
    samples = {}
    for name, model in models.items():
        texts = sample_texts(model, shards, SAMPLES, SAMPLE_TOKENS, cfg.seed)
        g = grammatical_share(texts)
        lo, hi = g.ci()
        samples[name] = {"grammatical": g.value, "ci": [lo, hi], "sentences": g.n,
                         "form": form_share(texts).value, "examples": texts[:3]}
    atomic_write_json(ctx.out / GROUNDTRUTH_FILE, {"tokens": n, "sources": summaries,
                                                   "samples": samples})
    return {"available": True, "tokens": n, "file": GROUNDTRUTH_FILE,
            "coverage": {src: {v: s["variables"][v]["coverage"] for v in s["variables"]}
                         for src, s in summaries.items()},
            "mean_best_f1": {src: {v: s["variables"][v]["mean_best_f1"]
                                   for v in s["variables"]} for src, s in summaries.items()},
            "named_concepts": {src: sum(m["f1"] >= 0.8 for m in s["concepts"].values())
                               for src, s in summaries.items()},
            "samples": samples}


_SOURCES = {"sae": "SAE latents (top-k active)", "labels": "attribution labels (k per token)",
            "student": "CoCoMix student (top-k predicted)"}


def render_groundtruth(s: dict[str, Any]) -> list[str]:
    """The REPORT.md section of the stage's result in summary `s` (none if unavailable)."""
    g = s.get("groundtruth") or {}
    if not g.get("available"):
        return []
    cols = [v for v in HEADLINE if v in next(iter(g["coverage"].values()))]
    out = ["## Ground truth (synthetic world: concepts known per token)", "",
           f"Validation tokens: {g['tokens']:,}. Each cell: coverage (share of the variable's "
           "values whose best-matching concept has token-level F1 ≥ 0.8) and, in brackets, "
           f"the mean best F1. Details per value and per concept: `{g['file']}`.", "",
           "| concepts | " + " | ".join(cols) + " | concepts with F1 ≥ 0.8 |",
           "|---|" + "---:|" * (len(cols) + 1)]
    for src, label in _SOURCES.items():
        cov, f1 = g["coverage"][src], g["mean_best_f1"][src]
        cells = [f"{cov[v]:.2f} ({f1[v]:.2f})" if f1[v] is not None else "–" for v in cols]
        out.append(f"| {label} | " + " | ".join(cells) + f" | {g['named_concepts'][src]} |")
    out += ["", "| student | grammatical sentences, sampled at T=1 (95 % CI) | "
                "template form only (no agreement) | sentences |", "|---|---:|---:|---:|"]
    for name, r in g["samples"].items():
        out.append(f"| {name} | {r['grammatical']:.2f} ({r['ci'][0]:.2f}–{r['ci'][1]:.2f}) | "
                   f"{r.get('form', float('nan')):.2f} | {r['sentences']} |")
    for name, r in g["samples"].items():
        if r["examples"]:
            example = r["examples"][0].replace("\n", " / ")[:300]
            out += ["", f"{name} sample: “{example}”"]
    return out + [""]
