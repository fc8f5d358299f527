"""The pipeline's groundtruth stage (training/pipeline_groundtruth.py) on a micro world run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cocomix_lens.data.truth import GroundTruth
from cocomix_lens.groundtruth import Recovery, concept_names, pool_units
from training.pipeline import run_pipeline
from training.pipeline_config import apply_overrides, pipeline_preset
from training.pipeline_groundtruth import sae_active


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    cfg = apply_overrides(pipeline_preset("micro"), {"data.corpus": "world",
                                                     "data.max_docs": "400"})
    out = tmp_path_factory.mktemp("world") / "run"
    return cfg, out, run_pipeline(cfg, out)


def test_world_run_reports_recovery_of_known_latents(run):
    cfg, out, summary = run
    g = summary["groundtruth"]
    assert g["available"] and g["tokens"] % cfg.seq_len == 0 and g["tokens"] > 0
    assert set(g["coverage"]) == {"sae", "labels", "student"}
    for src in g["coverage"].values():
        assert {"topic", "character", "place", "quantity"} <= set(src)
        assert all(0.0 <= c <= 1.0 for c in src.values())
    for r in g["samples"].values():
        assert 0.0 <= r["grammatical"] <= 1.0 and r["sentences"] >= 32
    report = (out / "REPORT.md").read_text()
    assert "## Ground truth (synthetic world" in report and "| SAE latents" in report
    assert json.loads((out / g["file"]).read_text())["tokens"] == g["tokens"]
    names = concept_names(out, "sae", threshold=0.0)
    saved = json.loads((out / g["file"]).read_text())
    listed = set(saved["sources"]["sae"]["concepts"]) | set(
        saved["sentence_sources"]["sae"]["concepts"])
    assert {str(c) for c in names} == listed and all("=" in n for n in names.values())


def test_sae_coverage_equals_a_recount_from_the_saved_sae(run):
    from training.pipeline import Context

    cfg, out, summary = run
    ctx = Context(cfg, out, {})
    shards = ctx.shards()
    starts = np.arange(summary["groundtruth"]["tokens"] // cfg.seq_len) * cfg.seq_len
    active = sae_active(ctx, shards, starts)
    assert active.shape == (len(starts) * cfg.seq_len, cfg.sae.k)
    truth = GroundTruth.open(out / "data")
    n = len(active)
    topic = truth.column("val", "topic")[:n]
    cols = {"topic": (topic, truth.values("topic"))}
    rec = Recovery.from_active(active, cols, cfg.sae.d_sae)
    saved = json.loads((out / "groundtruth.json").read_text())
    best = {v: f for v, _, f in rec.best_per_value("topic")}
    assert {v: d["f1"] for v, d in saved["sources"]["sae"]["variables"]["topic"]["values"]
            .items()} == pytest.approx(best, abs=1e-4)
    # The headline for topic is per sentence: recount it from sentence ends in the tokens.
    ends = [shards.decode([t]) for t in shards.split("val")[:n]]
    units = np.cumsum([0] + [any(c in e for c in ".?\n") or t == shards.eos_id
                             for e, t in zip(ends[:-1], shards.split("val")[:n - 1])])
    sent = Recovery.from_active(*pool_units(active, units, cols), cfg.sae.d_sae)
    assert saved["sentences"] == units[-1] + 1
    assert sent.coverage()["topic"] == summary["groundtruth"]["coverage"]["sae"]["topic"]
    assert {v: d["f1"] for v, d in saved["sentence_sources"]["sae"]["variables"]["topic"]
            ["values"].items()} == pytest.approx(
        {v: f for v, _, f in sent.best_per_value("topic")}, abs=1e-4)
    assert "character" not in saved["sentence_sources"]["sae"]["variables"]


def test_catalogue_names_concepts_after_their_ground_truth_match(run, tmp_path):
    from cocomix_lens.catalogue import build_catalogue
    from cocomix_lens.rundir import Run

    _, out, _ = run
    r = Run.open(out)
    plain = r.catalogue.concepts
    cat = build_catalogue(tmp_path / "cat", teacher=r.teacher, sae=r.sae, student=r.student,
                          shards=r.shards, labels=r.labels, truth={3: ("topic=sea", 0.91)})
    df = cat.concepts
    assert df.loc[3, "name"].split(":")[0] == "sea"
    assert df.loc[3, "truth"] == "topic=sea" and df.loc[3, "truth_f1"] == pytest.approx(0.91)
    assert df.loc[3, "explanation"].startswith("sea") and df.loc[3, "explanation"].endswith(
        "topic = sea, F1 0.91")
    others = df.index != 3
    plain_truth = plain["truth"] != ""
    assert (df.loc[others & ~plain_truth, "name"] == plain.loc[others & ~plain_truth,
                                                               "name"]).all()
    assert (df.loc[others, "truth"] == "").all() and df.loc[others, "truth_f1"].isna().all()
    assert cat.search("topic=sea").index[0] == 3
    assert "truth       topic=sea (F1 0.91" in str(cat[3]) and "truth " not in str(cat[4])
