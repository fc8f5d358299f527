"""summary.json and REPORT.md of a pipeline run, and the concept-prediction baselines.

Baselines for the CoCoMix student's concept metrics (same definitions as training.evaluate,
same validation windows):
    chance     a random ranking: top-1 ~ k / C, top-4 ~ 4 / C
    frequency  always predict the 4 most frequent training labels (a context-free guess)
"""

from __future__ import annotations

import math
from typing import Any

import torch

from cocomix_lens.data.files import atomic_write_json, atomic_write_text
from cocomix_lens.rundir import LAYOUT
from cocomix_lens.tables import markdown_table
from training.pipeline_groundtruth import render_groundtruth

SUMMARY_VERSION = 1


def concept_baselines(ctx: Any) -> dict[str, float]:
    """Chance and label-frequency baselines on the trainer's validation windows."""
    from cocomix_lens.concepts import LabelCache
    from training.evaluate import TOPK, concept_sums
    from training.sampler import sequential_starts

    cfg = ctx.cfg
    cache = LabelCache.open(ctx.dir("labels"))
    n_c, k = int(cache.meta["n_latents"]), cfg.labels.k
    train = torch.from_numpy(cache.array("train", "ids")[:, :k].astype("int64"))
    freq = torch.bincount(train.flatten(), minlength=n_c).float()
    val_tokens = int(cache.meta["splits"]["val"]["tokens"])
    starts = sequential_starts(val_tokens, cfg.seq_len,
                               limit=cfg.eval_batches * cfg.batch_size)
    labels = cache.labels("val", starts, cfg.seq_len)[..., :k]
    logits = torch.log1p(freq).expand(*labels.shape[:2], n_c)
    sums = concept_sums(logits, labels)
    n = max(float(sums["n_pos"]), 1.0)
    return {"n_concepts": n_c, "chance_top1": min(k / n_c, 1.0),
            "chance_top4": min(TOPK / n_c, 1.0), "frequency_top1": float(sums["top1_sum"]) / n,
            "frequency_top4": float(sums["top4_sum"]) / n,
            "distinct_train_labels": int((freq > 0).sum())}


def write_summary(ctx: Any, records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Write summary.json and REPORT.md into the run directory; returns the summary."""
    results = {name: rec.get("result", {}) for name, rec in records.items()}
    summary: dict[str, Any] = {
        "summary_version": SUMMARY_VERSION, "run_dir": str(ctx.out),
        "complete": "cocomix" in records,
        "stages": {name: {"wall_s": rec.get("wall_s"), "cpu_s": rec.get("cpu_s"),
                          "skipped": rec.get("skipped", False),
                          "finished_at": rec.get("finished_at")}
                   for name, rec in records.items()},
        "total_wall_s": sum(rec.get("wall_s") or 0.0 for rec in records.values()),
        **results,
        "artifacts": _artifacts(records),
        "config": ctx.cfg.to_dict(),
    }
    if "labels" in records and "cocomix" in records:
        summary["concept_baselines"] = concept_baselines(ctx)
    atomic_write_json(ctx.dir("summary"), summary)
    atomic_write_text(ctx.dir("report"), render_report(summary))
    return summary


# The stage that makes each run piece (LAYOUT gives where it lives).
MADE_BY = {"shards": "prepare", "tokenizer": "prepare", "teacher": "teacher", "sae": "sae",
           "labels": "labels", "baseline": "ntp", "student": "cocomix", "catalogue": "catalog"}


def _artifacts(records: dict[str, Any]) -> dict[str, str]:
    """Paths (relative to the run directory) of the pieces made so far, from LAYOUT."""
    return {piece: rel for piece, rel in LAYOUT.pieces("pipeline").items()
            if MADE_BY.get(piece) in records}


# ---- REPORT.md ------------------------------------------------------------------------------
def _f(x: Any, spec: str = ".4f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return format(x, spec) if isinstance(x, (int, float)) else str(x)


def render_report(s: dict[str, Any]) -> str:
    lines = [f"# cocomix-lens pipeline report: `{s['run_dir']}`", ""]
    lines += _students(s) + _concepts(s) + render_groundtruth(s) + _teacher_sae(s) + _stages(s)
    return "\n".join(lines) + "\n"


def _students(s: dict[str, Any]) -> list[str]:
    rows = [(name, s[name]) for name in ("ntp", "cocomix") if name in s]
    if not rows:
        return []
    cells = [(name, _f(r.get("n_params"), ","), _f(r.get("steps"), "d"),
              _f(r.get("tokens"), ","), _f(r.get("val_loss")), _f(r.get("val_ppl"), ".2f"),
              _f(r.get("tokens_per_s"), ",.0f")) for name, r in rows]
    out = ["## Students (same windows, same token budget)", "",
           markdown_table(("student", "params", "steps", "tokens", "val loss", "val ppl",
                           "tokens/s"), cells, "lrrrrrr")]
    if len(rows) == 2 and rows[0][1].get("val_loss") and rows[1][1].get("val_loss"):
        delta = rows[1][1]["val_loss"] - rows[0][1]["val_loss"]
        out += ["", f"CoCoMix − NTP val loss: {delta:+.4f} nats/token."]
    return out + [""]


def _concepts(s: dict[str, Any]) -> list[str]:
    c, b = s.get("cocomix"), s.get("concept_baselines")
    if not c or not b:
        return []
    return ["## Concept prediction (CoCoMix student vs the teacher's labels, validation)", "",
            markdown_table(("predictor", "top-1", "top-4"), [
                ("CoCoMix student", _f(c.get("concept_top1")), _f(c.get("concept_top4"))),
                ("most frequent labels", _f(b["frequency_top1"]), _f(b["frequency_top4"])),
                ("chance", _f(b["chance_top1"]), _f(b["chance_top4"]))], "lrr"), "",
            f"top-1: the highest concept logit is one of the k labels; top-4: recall of the "
            f"labels among the 4 highest logits. C = {b['n_concepts']:,} concepts; "
            f"{b['distinct_train_labels']:,} distinct labels in the train cache; "
            f"concept CE {_f(c.get('concept_ce'))}, "
            f"{_f(c.get('concept_distinct'), ',.0f')} distinct argmax concepts.", ""]


# SAE-Lens architecture names as REPORT.md writes them (others are written as they are).
SAE_NAMES = {"topk": "TopK", "batchtopk": "BatchTopK", "jumprelu": "JumpReLU",
             "matryoshka_batchtopk": "Matryoshka BatchTopK", "standard": "ReLU"}


def sae_title(q: dict[str, Any]) -> str:
    """REPORT.md's SAE header: the architecture from the SAE's config (the sae stage's result),
    `(Matryoshka BatchTopK, saved as JumpReLU; SAE-Lens)`; none claimed when a summary predates
    the fields."""
    trained, saved = q.get("training_architecture"), q.get("architecture")
    names = [SAE_NAMES.get(a, a) for a in (trained or saved, saved) if a]
    if not names:
        return "## SAE (SAE-Lens)"
    arch = names[0] if names[0] == names[-1] else f"{names[0]}, saved as {names[-1]}"
    return f"## SAE ({arch}; SAE-Lens)" if "," in arch else f"## SAE ({arch}, SAE-Lens)"


def _teacher_sae(s: dict[str, Any]) -> list[str]:
    out = []
    t, q = s.get("teacher"), s.get("sae")
    if t:
        mc = t.get("model_config") or {}
        out += ["## Teacher", "",
                f"d_model {mc.get('d_model')}, {mc.get('n_layers')} layers, "
                f"{_f(t.get('n_params'), ',')} parameters, {_f(t.get('steps'), 'd')} steps; "
                f"val loss {_f(t.get('val_loss'))} (ppl {_f(t.get('val_ppl'), '.2f')}).", ""]
    if q:
        out += [sae_title(q), "",
                f"`{q['hook']}`, d_in {q['d_in']}, d_sae {q['d_sae']:,}, k {q['k']}.", "",
                markdown_table(
                    ("variance explained", "L0", "dead latents", "CE clean", "CE with SAE",
                     "CE zero-ablated", "CE loss recovered"),
                    [(_f(q.get("variance_explained")), _f(q.get("l0"), ".1f"),
                      f"{q.get('dead_latents')} ({_f(q.get('dead_fraction'), '.1%')})",
                      _f(q.get("ce_clean")), _f(q.get("ce_sae")),
                      _f(q.get("ce_zero_ablation")), _f(q.get("ce_loss_recovered")))],
                    "rrrrrrr"), ""]
    return out


def _stages(s: dict[str, Any]) -> list[str]:
    rows = [(name, _f(st["wall_s"], ".1f"), _f(st.get("cpu_s"), ".1f"),
             _f((s.get(name) or {}).get("tokens_per_s"), ",.0f"),
             "skipped (done before)" if st["skipped"] else "ran")
            for name, st in s["stages"].items()]
    rows.append(("**total**", _f(s["total_wall_s"], ".1f"), "", "", ""))
    out = ["## Stages", "",
           markdown_table(("stage", "wall time (s)", "CPU time (s)", "tokens/s",
                           "this invocation"), rows, "lrrrl"), "",
            "CPU time counts every thread; wall time well above CPU time / threads means "
            "the machine was shared.", ""]
    arts = s.get("artifacts", {})
    if arts:
        out += ["Artifacts (relative to the run directory): "
                + ", ".join(f"{k} `{v}`" for k, v in arts.items()) + ".", ""]
    return out
