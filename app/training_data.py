"""Metrics records of a run (`Run.metrics`, `Run.summary`) as tidy tables for the plots.

`metrics_frame` -> one row per (stage, split, step, metric) with the tokens seen so far, so
every curve can be drawn by tokens and stages can share a plot. `study_tables` -> the verdict
and ablation tables of a study (study.json, read by `Run.study`, drawn by `report/study.py`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

# Keys of a metrics record that are coordinates, not metrics.
COORDS = ("split", "step", "tokens")
# What each objective's loss is called in metrics.jsonl (train records; val_* on val records).
OBJECTIVES = ("loss", "ntp", "concept", "kd", "val_loss", "concept_ce")
ACCURACY = ("concept_top1", "concept_top4")


def metrics_frame(metrics: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """Long table: stage, split, step, tokens, metric, value (numbers only)."""
    rows = []
    for stage, records in metrics.items():
        for rec in records:
            for key, value in rec.items():
                if key in COORDS or isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                rows.append({"stage": stage, "split": rec.get("split", "train"),
                             "step": rec.get("step"), "tokens": rec.get("tokens"),
                             "metric": key, "value": float(value)})
    cols = ["stage", "split", "step", "tokens", "metric", "value"]
    return pd.DataFrame(rows, columns=cols)


def select(frame: pd.DataFrame, metrics: tuple[str, ...],
           stages: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Rows of `metrics` (and `stages`), labelled "stage · metric", ordered by tokens."""
    out = frame[frame.metric.isin(metrics)]
    if stages is not None:
        out = out[out.stage.isin(stages)]
    out = out.assign(series=out.stage + " · " + out.metric)
    return out.sort_values(["series", "tokens", "step"])


def stage_times(summary: dict[str, Any]) -> pd.DataFrame:
    """Pipeline stage wall and CPU seconds (empty for a train run)."""
    rows = [{"stage": name, "wall_s": s.get("wall_s"), "cpu_s": s.get("cpu_s"),
             "skipped": bool(s.get("skipped"))}
            for name, s in (summary.get("stages") or {}).items()]
    return pd.DataFrame(rows, columns=["stage", "wall_s", "cpu_s", "skipped"])


SAE_QUALITY = {"variance_explained": "variance explained", "l0": "L0",
               "dead_fraction": "dead fraction", "ce_loss_recovered": "CE loss recovered",
               "mse": "MSE", "d_sae": "latents", "k": "k", "hook": "hook"}


def sae_quality(summary: dict[str, Any]) -> dict[str, Any]:
    """The SAE quality figures the pipeline recorded, by readable name."""
    sae = summary.get("sae") or {}
    return {label: sae[key] for key, label in SAE_QUALITY.items() if key in sae}


def final_table(summary: dict[str, Any]) -> pd.DataFrame:
    """One row per trained model: val loss, perplexity, tokens, tokens/s, concept accuracy."""
    keys = ("val_loss", "val_ppl", "tokens", "tokens_per_s", "concept_top1", "concept_top4",
            "n_params")
    rows = []
    for name in ("teacher", "ntp", "cocomix"):
        if isinstance(summary.get(name), dict):
            rows.append({"model": name, **{k: summary[name].get(k) for k in keys}})
    if not rows and "val_loss" in summary:  # a train run's own summary
        rows.append({"model": summary.get("objective", "model"),
                     **{k: summary.get(k) for k in keys}})
    return pd.DataFrame(rows)


def study_tables(doc: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(verdicts: one row per claim with its effect, numbers and test; ablations: per arm the
    final val loss mean and std over seeds, the paired gap to cocomix and the seed count)."""
    from report.study import verdict_rows

    verdicts = pd.DataFrame(verdict_rows(doc),
                            columns=["claim", "verdict", "effect", "numbers", "test", "paper"])
    ablations = pd.DataFrame([{"arm": r["arm"], "val loss": r["mean"], "± std": r["std"],
                               "Δ vs cocomix": r["delta"], "seeds": r["n"]}
                              for r in doc["ablations"]],
                             columns=["arm", "val loss", "± std", "Δ vs cocomix", "seeds"])
    return verdicts, ablations


def study_caption(doc: dict[str, Any]) -> str:
    """The study's settings in one line."""
    seeds = (doc.get("settings") or {}).get("seeds", [])
    return (f"{len(seeds)} seeds {seeds}, {doc.get('budget', 0):,} training tokens per run, "
            f"validation on {doc.get('eval_tokens', 0):,} tokens every "
            f"{doc.get('eval_every_tokens', 0):,} tokens. Verdicts: paired differences over "
            "seeds, 95 % t-interval (holds: above 0; does not hold: below the minimal effect; "
            "else inconclusive), sign-test p beside it. Full report: study/study.md.")
