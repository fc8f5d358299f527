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
from cocomix_lens.groundtruth import COVERAGE_F1, concept_names_of
from cocomix_lens.rundir import LAYOUT
from cocomix_lens.tables import markdown_table

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


def student_active(model: Any, tokens: np.ndarray, seq_len: int, k: int) -> np.ndarray:
    """int [N, k]: the student's top-k concept logits per token of `tokens` [N] (sequential
    windows of seq_len; `concept_activity`, the pass the catalogue and app read too)."""
    from cocomix_lens.catalogue.scan import concept_activity

    out = [b.logits.topk(k, dim=-1).indices.numpy()
           for b in concept_activity(model, tokens, window=seq_len, tail=False)]
    return np.concatenate(out) if out else np.zeros((0, k), np.int64)


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
    from cocomix_lens.groundtruth import Recovery, pool_units
    from cocomix_lens.world import SENTENCE_VARIABLES, form_share, grammatical_share

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
              "student": student_active(models["cocomix"], np.asarray(shards.split("val")[:n]),
                                        cfg.seq_len, cfg.labels.k)}
    n_concepts = cfg.sae.d_sae
    summaries = {src: Recovery.from_active(a, cols, n_concepts).summary()
                 for src, a in active.items()}
    units = sentence_units(shards, n)
    sent_cols = {v: c for v, c in cols.items() if v in SENTENCE_VARIABLES}
    sentence = {src: Recovery.from_active(*pool_units(a, units, sent_cols), n_concepts).summary()
                for src, a in active.items()}
    summaries["probe"], sentence["probe"] = probe_summaries(ctx, shards, truth, starts, cols,
                                                            units, sent_cols)
    samples = {}
    for name, model in models.items():
        texts = sample_texts(model, shards, SAMPLES, SAMPLE_TOKENS, cfg.seed)
        g = grammatical_share(texts)
        lo, hi = g.ci()
        samples[name] = {"grammatical": g.value, "ci": [lo, hi], "sentences": g.n,
                         "form": form_share(texts).value, "examples": texts[:3]}
    atomic_write_json(ctx.out / LAYOUT.pipeline.groundtruth, {
        "tokens": n, "sentences": int(units[-1]) + 1, "sources": summaries,
        "sentence_sources": sentence, "samples": samples})
    # The headline per variable: sentence-level for sentence-scoped variables, else tokens.
    headline = {src: {v: (sentence if v in sent_cols else summaries)[src]["variables"][v]
                      for v in summaries[src]["variables"]} for src in summaries}
    return {"available": True, "tokens": n, "sentences": int(units[-1]) + 1,
            "file": LAYOUT.pipeline.groundtruth, "sentence_variables": sorted(sent_cols),
            "coverage": {src: {v: h["coverage"] for v, h in hv.items()}
                         for src, hv in headline.items()},
            "mean_best_f1": {src: {v: h["mean_best_f1"] for v, h in hv.items()}
                             for src, hv in headline.items()},
            "token_mean_best_f1": {src: {v: s["variables"][v]["mean_best_f1"]
                                         for v in s["variables"]}
                                   for src, s in summaries.items()},
            "named_concepts": {src: len(concept_names_of(summaries[src], sentence[src]))
                               for src in summaries if src != "probe"},
            "samples": samples}


PROBE_TOKENS = 65_536  # train tokens the probe ceiling is fitted on


@torch.no_grad()
def hook_features(teacher: Any, shards: Any, split: str, starts: np.ndarray, seq_len: int,
                  hook: str) -> torch.Tensor:
    """[len(starts) * seq_len, d_model] teacher activations at `hook` over those windows."""
    from cocomix_lens.concepts.capture import activation_at

    out = []
    for batch in _batched(starts):
        x, _ = shards.batch(split, batch, seq_len)
        out.append(activation_at(teacher, hook, x.to(teacher.W_E.device)).flatten(0, 1)
                   .float().cpu())
    return torch.cat(out)


def probe_summaries(ctx: Any, shards: Any, truth: Any, starts: np.ndarray,
                    cols: dict[str, tuple[np.ndarray, list[str]]], units: np.ndarray,
                    sent_cols: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ceiling a linear read of the SAE's input reaches: per variable, a ridge probe at
    the SAE hook (fitted on train tokens, one class per value plus "none") predicts one value
    per validation token, or per sentence from its tokens' mean scores; its coverage counts
    the values whose predicted class has F1 >= 0.8, as for concepts. `Recovery.summary()`s
    (token-level, sentence-level), without per-concept matches."""
    from cocomix_lens.groundtruth import pool_units
    from training.sampler import sequential_starts
    from training.study.measure import ridge_probe_scores

    pair, seq_len = ctx.teacher_pair(), ctx.cfg.seq_len
    hook = pair.sae.cfg.metadata.hook_name
    fit_starts = sequential_starts(shards.n_tokens("train"), seq_len,
                                   limit=max(PROBE_TOKENS // seq_len, 1))
    x_fit = hook_features(pair.model, shards, "train", fit_starts, seq_len, hook)
    x_val = hook_features(pair.model, shards, "val", starts, seq_len, hook)
    fit_pos = (fit_starts[:, None] + np.arange(seq_len)).reshape(-1)
    token, sentence = {}, {}
    for var, (col, names) in cols.items():
        none = len(names)  # the probe's class for tokens without a value
        y = truth.column("train", var)[fit_pos].astype(np.int64)
        scores = ridge_probe_scores(x_fit, np.where(y >= 0, y, none), x_val, none + 1)
        pred = scores.argmax(1).numpy()
        token[var] = _class_summary(np.where(pred < none, pred, -1), col, names)
        if var in sent_cols:
            pooled = _unit_mean(scores, units).argmax(1).numpy()
            _, unit_truth = pool_units(pred[:, None], units, {var: (col, names)})
            sentence[var] = _class_summary(np.where(pooled < none, pooled, -1),
                                           unit_truth[var][0], names)
    return ({"threshold": COVERAGE_F1, "variables": token, "concepts": {}},
            {"threshold": COVERAGE_F1, "variables": sentence, "concepts": {}})


def _class_summary(pred: np.ndarray, held: np.ndarray, names: list[str]) -> dict[str, Any]:
    """A probe's `Recovery.summary()` entry for one variable: value j is detected where the
    probe predicts class j (its own class, not the best-matching one), F1 counted as for
    concepts (0 when no better than predicting it everywhere)."""
    from cocomix_lens.groundtruth import MatchTable

    table = MatchTable.count(pred[:, None], held, len(names), len(names))
    f1 = np.diag(table.without_trivial(len(pred)))
    seen = [j for j in range(len(names)) if table.held[j] > 0]
    values = {names[j]: {"concept": j, "f1": round(float(f1[j]), 4)} for j in seen}
    best = [float(f1[j]) for j in seen]
    return {"coverage": float(np.mean([f >= COVERAGE_F1 for f in best])) if best else
            float("nan"), "mean_best_f1": float(np.mean(best)) if best else None,
            "values": values}


def _unit_mean(scores: torch.Tensor, units: np.ndarray) -> torch.Tensor:
    """[U, C] mean of token rows [N, C] per unit (units int [N], non-decreasing)."""
    idx = torch.as_tensor(units, dtype=torch.long)
    total = torch.zeros(int(units[-1]) + 1, scores.shape[1], dtype=scores.dtype)
    total.index_add_(0, idx, scores)
    return total / torch.bincount(idx).clamp(min=1)[:, None].to(scores.dtype)


def sentence_units(shards: Any, n: int) -> np.ndarray:
    """int [n]: the sentence of each of the first n validation tokens."""
    from cocomix_lens.catalogue.readout import vocabulary
    from cocomix_lens.groundtruth import unit_ids
    from cocomix_lens.world import sentence_ends

    ends = sentence_ends(vocabulary(shards.tokenizer, shards.vocab_size), shards.eos_id)
    return unit_ids(ends[np.asarray(shards.split("val")[:n], dtype=np.int64)])


# "{labels}": the run's labels method (summary["labels"]["method"]), e.g. attribution, activation
_SOURCES = {"sae": "SAE latents (top-k active)", "labels": "{labels} labels (k per token)",
            "student": "CoCoMix student (top-k predicted)",
            "probe": "linear probe at the SAE hook (ceiling)"}


def render_groundtruth(s: dict[str, Any]) -> list[str]:
    """The REPORT.md section of the stage's result in summary `s` (none if unavailable)."""
    g = s.get("groundtruth") or {}
    if not g.get("available"):
        return []
    cols = [v for v in HEADLINE if v in next(iter(g["coverage"].values()))]
    out = ["## Ground truth (synthetic world: concepts known per token)", "",
           f"Validation tokens: {g['tokens']:,}"
           + (f" ({g['sentences']:,} sentences)" if "sentences" in g else "")
           + ". Each cell: coverage (share of the variable's values whose best-matching "
           "concept has F1 ≥ 0.8) and, in brackets, the mean best F1. "
           + (f"{', '.join(v for v in cols if v in g['sentence_variables'])} are scored per "
              "sentence (a concept detects a sentence's value when it fires on any of its "
              "tokens; token-level F1 in brackets after it), the others per token. "
              if g.get("sentence_variables") else "F1 is token-level. ")
           + f"Details per value and per concept: `{g['file']}`.", ""]
    rows = []
    for src, label in _SOURCES.items():
        if src not in g["coverage"]:  # runs from before the probe ceiling
            continue
        cov, f1 = g["coverage"][src], g["mean_best_f1"][src]
        tok = g.get("token_mean_best_f1", {}).get(src, {})
        cells = [_cell(cov[v], f1[v], tok.get(v) if v in g.get("sentence_variables", ()) else
                       None) for v in cols]
        method = (s.get("labels") or {}).get("method", "attribution")
        rows.append((label.format(labels=method), *cells, g["named_concepts"].get(src, "–")))
    out.append(markdown_table(("concepts", *cols, "concepts with F1 ≥ 0.8"), rows,
                              "l" + "r" * (len(cols) + 1)))
    rows = [(name, f"{r['grammatical']:.2f} ({r['ci'][0]:.2f}–{r['ci'][1]:.2f})",
             f"{r.get('form', float('nan')):.2f}", r["sentences"])
            for name, r in g["samples"].items()]
    out += ["", markdown_table(("student", "grammatical sentences, sampled at T=1 (95 % CI)",
                                "template form only (no agreement)", "sentences"), rows,
                               "lrrr")]
    for name, r in g["samples"].items():
        if r["examples"]:
            example = r["examples"][0].replace("\n", " / ")[:300]
            out += ["", f"{name} sample: “{example}”"]
    return out + [""]


def _cell(coverage: float, f1: float | None, token_f1: float | None) -> str:
    if f1 is None:
        return "–"
    return f"{coverage:.2f} ({f1:.2f})" + (f" [{token_f1:.2f}]" if token_f1 is not None else "")
