"""The pipeline's groundtruth stage (training/pipeline_groundtruth.py) on a micro world run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cocomix_lens.data.truth import GroundTruth
from cocomix_lens.groundtruth import Recovery, concept_names, pool_units
from cocomix_lens.rundir import Run
from training.pipeline_groundtruth import sae_active


@pytest.fixture(scope="module")
def run(micro_world_run):
    return micro_world_run  # the session's (tests/conftest.py), read only


def test_world_run_reports_recovery_of_known_latents(run):
    cfg, out, summary = run
    g = summary["groundtruth"]
    assert g["available"] and g["tokens"] % cfg.seq_len == 0 and g["tokens"] > 0
    assert set(g["coverage"]) == {"sae", "labels", "student", "probe"}
    for src in g["coverage"].values():
        assert {"topic", "character", "place", "quantity"} <= set(src)
        assert all(0.0 <= c <= 1.0 for c in src.values())
    for r in g["samples"].values():
        assert 0.0 <= r["grammatical"] <= 1.0 and r["sentences"] >= 32
    report = (out / "REPORT.md").read_text()
    assert "## Ground truth (synthetic world" in report and "| SAE latents" in report
    assert json.loads((out / g["file"]).read_text())["tokens"] == g["tokens"]
    names = concept_names(Run.open(out), "sae", threshold=0.0)
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
    saved = Run.open(out).groundtruth
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


def test_probe_ceiling_is_a_ridge_probe_at_the_sae_hook_scored_per_sentence(run):
    from training.pipeline import Context
    from training.pipeline_groundtruth import PROBE_TOKENS, hook_features, sentence_units
    from training.sampler import sequential_starts
    from training.study.measure import ridge_probe_scores

    cfg, out, summary = run
    ctx = Context(cfg, out, {})
    shards, truth = ctx.shards(), GroundTruth.open(out / "data")
    n = summary["groundtruth"]["tokens"]
    hook = ctx.teacher_pair().sae.cfg.metadata.hook_name
    fit = sequential_starts(shards.n_tokens("train"), cfg.seq_len,
                            limit=PROBE_TOKENS // cfg.seq_len)
    teacher = ctx.teacher_pair().model
    x_fit = hook_features(teacher, shards, "train", fit, cfg.seq_len, hook)
    x_val = hook_features(teacher, shards, "val", np.arange(n // cfg.seq_len) * cfg.seq_len,
                          cfg.seq_len, hook)
    names = truth.values("topic")
    y = truth.column("train", "topic")[(fit[:, None] + np.arange(cfg.seq_len)).ravel()]
    scores = ridge_probe_scores(x_fit, np.where(y >= 0, y, len(names)), x_val,
                                len(names) + 1).numpy()
    units = sentence_units(shards, n)
    mean = np.stack([scores[units == u].mean(0) for u in range(units[-1] + 1)])
    pred = mean.argmax(1)
    held = -np.ones(units[-1] + 1, dtype=np.int64)
    col = truth.column("val", "topic")[:n]
    held[units[col >= 0]] = col[col >= 0]
    f1 = {}
    for j, name in enumerate(names):
        if (held == j).any():
            tp = ((pred == j) & (held == j)).sum()
            p = (held == j).mean()  # no better than predicting j everywhere counts as 0
            f = 2 * tp / ((pred == j).sum() + (held == j).sum())
            f1[name] = f if f > 2 * p / (1 + p) else 0.0
    saved = Run.open(out).groundtruth["sentence_sources"]["probe"]
    assert {v: d["f1"] for v, d in saved["variables"]["topic"]["values"].items()} == \
        pytest.approx(f1, abs=1e-4)
    assert summary["groundtruth"]["coverage"]["probe"]["topic"] == pytest.approx(
        np.mean([f >= 0.8 for f in f1.values()]))
    assert "| linear probe at the SAE hook (ceiling) |" in (out / "REPORT.md").read_text()
    from app.catalogue_view import coverage_table

    table = coverage_table(Run.open(out))  # the app's Concepts page shows it
    g = summary["groundtruth"]
    assert table.loc["linear probe at the SAE hook", "topic"] == \
        f"{g['coverage']['probe']['topic']:.2f} ({g['mean_best_f1']['probe']['topic']:.2f})"
    assert list(table.index) == ["SAE latents", "attribution labels", "CoCoMix student",
                                 "linear probe at the SAE hook"]


def test_catalogue_names_concepts_after_their_ground_truth_match(run, tmp_path):
    from cocomix_lens.catalogue import build_catalogue

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


@pytest.mark.parametrize("method", ["attribution", "activation"])
def test_report_names_the_runs_own_labels_method(method):
    from training.pipeline_groundtruth import render_groundtruth

    g = {"available": True, "tokens": 10, "file": "groundtruth.json", "named_concepts": {},
         "coverage": {"labels": {"topic": 0.5}}, "mean_best_f1": {"labels": {"topic": 0.6}},
         "samples": {}}
    text = "\n".join(render_groundtruth({"groundtruth": g, "labels": {"method": method}}))
    assert f"| {method} labels (k per token) | 0.50 (0.60)" in text
    other = {"attribution": "activation", "activation": "attribution"}[method]
    assert f"{other} labels" not in text
