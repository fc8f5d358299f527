"""The study end to end on a micro run with 2 seeds: every arm trains once on the shared data
order, a re-run reuses the finished runs, and the files report the runs' own numbers."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers_training import copy_run

from training.cli import main
from training.study.arms import StudySettings, get_arms
from training.study.runner import DONE, Study, redraw, run_study
from training.study.stats import FAILS, HOLDS, NOT_RUN, UNSURE

ARMS = ["cocomix", "cocomix_neg", "add"]


@pytest.fixture(scope="module")
def study(tmp_path_factory, micro_run):
    # a copy of the session's micro run (tests/conftest.py): the study writes into it
    out = copy_run(micro_run[1], tmp_path_factory.mktemp("study"))
    settings = StudySettings(seeds=[0, 1], budget=2048, eval_points=2, steer_samples=2)
    doc = run_study(out, settings, get_arms(ARMS), progress=False)
    return out, settings, doc


def test_study_writes_every_claim_and_the_figures(study):
    out, _, doc = study
    root = out / "study"
    for name in ("study.json", "study.md", "figures/curves.html", "figures/savings.html",
                 "figures/ablations.html"):
        assert (root / name).is_file(), name
    assert [c["id"] for c in doc["claims"]] == list("abcdefgh")
    verdicts = {c["id"]: c["verdict"] for c in doc["claims"]}
    assert set(verdicts.values()) <= {HOLDS, FAILS, UNSURE, NOT_RUN}
    assert verdicts["b"] == NOT_RUN and verdicts["e"] == NOT_RUN  # arms not trained
    assert verdicts["h"] == NOT_RUN  # no ground truth in a text corpus
    assert verdicts["f"] != NOT_RUN
    md = (root / "study.md").read_text()
    assert "(a) CoCoMix reaches NTP's final val loss" in md and "cocomix_neg" in md


def test_claims_report_the_runs_own_losses(study):
    out, _, doc = study
    finals = {(arm, seed): json.loads((out / "study" / "runs" / arm / f"seed{seed}" /
                                       "summary.json").read_text())["val_loss"]
              for arm in ["ntp", *ARMS] for seed in (0, 1)}
    a = next(c for c in doc["claims"] if c["id"] == "a")["comparisons"][0]
    assert a["diffs"] == pytest.approx([finals["ntp", s] - finals["cocomix", s] for s in (0, 1)])
    assert a["n"] == 2
    curve = doc["curves"]["add"]["1"]
    assert curve["tokens"] == [1024, 2048] and curve["val_loss"][-1] == finals["add", 1]


def test_arms_of_a_seed_share_the_budget_and_label_variants_are_built(study):
    out, _, doc = study
    assert doc["budget"] == 2048
    assert doc["labels"]["attribution_neg"]["built"] is True
    assert (out / "study" / "labels_attribution_neg" / "meta.json").is_file()
    neg = json.loads((out / "study" / "runs" / "cocomix_neg" / "seed0" / DONE).read_text())
    assert Study(out, StudySettings(seeds=[0], budget=2048)).run_config(
        get_arms(ARMS)[2], 0).concept.labels.endswith("labels_attribution_neg")
    ntp = json.loads((out / "study" / "runs" / "ntp" / "seed0" / DONE).read_text())
    assert ntp["config"]["seed"] == neg["config"]["seed"] == 0
    assert ntp["config"]["optim"]["max_steps"] == neg["config"]["optim"]["max_steps"]


def test_rerun_reuses_finished_runs(study):
    out, settings, doc = study
    markers = sorted((out / "study" / "runs").glob(f"*/*/{DONE}"))
    assert len(markers) == 8
    before = {m: m.stat().st_mtime_ns for m in markers}
    again = run_study(out, StudySettings(**{**settings.to_dict(), "steer_samples": 0}),
                      get_arms(ARMS), progress=False)
    assert {m: m.stat().st_mtime_ns for m in markers} == before
    assert again["ablations"] == doc["ablations"]


def test_other_budget_in_the_same_study_is_refused(study):
    out, settings, _ = study
    with pytest.raises(ValueError, match="fix: pass the same --budget"):
        Study(out, StudySettings(seeds=[0], budget=4096, eval_points=2)).claim()


def test_cli_errors_are_one_line(study, capsys):
    out, _, _ = study
    with pytest.raises(SystemExit) as stop:  # a bounded flag: argparse refuses it
        main(["study", "--run", str(out), "--seeds", "0"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err and "--seeds: 0 is out of range" in err
    assert main(["study", "--run", str(out / "nowhere")]) == 2
    assert "is not a pipeline run" in capsys.readouterr().err


@pytest.fixture(scope="module")
def world_study(tmp_path_factory, micro_world_run):
    # a copy of the session's world run (tests/conftest.py): the study writes into it
    out = copy_run(micro_world_run[1], tmp_path_factory.mktemp("world_study"))
    settings = StudySettings(seeds=[0, 1], budget=1024, eval_points=1, steer_samples=0,
                             probe_tokens=512)
    return out, run_study(out, settings, get_arms(["cocomix"]), progress=False)


def test_world_study_probes_the_ground_truth_variables(world_study):
    out, doc = world_study
    h = next(c for c in doc["claims"] if c["id"] == "h")
    assert h["verdict"] in {HOLDS, FAILS, UNSURE}
    probes = doc["probe"]
    assert sorted(probes) == ["0", "1"]
    for seed, p in probes.items():
        per_var = p["per_variable"]["cocomix"]
        assert {"topic", "character"} <= set(per_var)
        assert all(0.0 <= v["accuracy"] <= 1.0 for v in per_var.values())
        assert p["cocomix"] == pytest.approx(np.mean([v["accuracy"] for v in per_var.values()]))
    assert h["comparisons"][0]["diffs"] == pytest.approx(
        [probes[s]["cocomix"] - probes[s]["ntp"] for s in ("0", "1")])
    f = next(c for c in doc["claims"] if c["id"] == "f")
    assert f["verdict"] == NOT_RUN  # --steer-samples 0


def test_report_only_judges_finished_runs_and_trains_nothing(study):
    out, settings, doc = study
    only = StudySettings(**{**settings.to_dict(), "steer_samples": 0, "report_only": True})
    again = run_study(out, only, get_arms([*ARMS, "kd"]), progress=False)
    assert not (out / "study" / "runs" / "kd").exists()
    claims = {c["id"]: c for c in again["claims"]}
    assert claims["e"]["verdict"] == NOT_RUN  # kd never trained
    assert claims["a"]["comparisons"][0]["diffs"] == pytest.approx(
        next(c for c in doc["claims"] if c["id"] == "a")["comparisons"][0]["diffs"])


def test_redraw_writes_html_and_png_figures_from_study_json_alone(tmp_path):
    committed = Path(__file__).resolve().parents[3] / "benchmarks/results/study_world"
    shutil.copy(committed / "study.json", tmp_path / "study.json")
    before = json.loads((tmp_path / "study.json").read_text())
    doc = redraw(tmp_path)
    names = [f"{n}.{ext}" for ext in ("html", "png") for n in ("curves", "savings", "ablations")]
    assert sorted(doc["figures"]["files"]) == sorted(names) and doc["figures"]["png"]
    for name in names:  # kaleido's bundled chromium, offline
        head = (tmp_path / "figures" / name).read_bytes()[:8]
        assert head == b"\x89PNG\r\n\x1a\n" if name.endswith("png") else head.strip()
    # nothing re-judged: the claims and the table are study.json's own
    assert doc["claims"] == before["claims"] and doc["ablations"] == before["ablations"]
    md = (tmp_path / "study.md").read_text()
    ntp = before["ablations"][0]
    assert ntp["arm"] == "ntp" and "[curves.png](figures/curves.png)" in md
    assert f"| ntp | {ntp['mean']:.4f} ± {ntp['std']:.4f} |" in md
    with pytest.raises(FileNotFoundError, match="fix: pass the study directory"):
        redraw(tmp_path / "figures")


def test_a_failing_png_export_leaves_the_html_and_says_why_in_one_line(tmp_path, monkeypatch):
    from training.study import plots

    def broken(figs, out):
        raise ValueError("Transform failed with error code 1\nchromium said more")

    committed = Path(__file__).resolve().parents[3] / "benchmarks/results/study_world"
    shutil.copy(committed / "study.json", tmp_path / "study.json")
    monkeypatch.setattr(plots, "write_png", broken)
    figs = redraw(tmp_path)["figures"]
    assert figs["files"] == ["curves.html", "savings.html", "ablations.html"]
    assert not figs["png"]
    assert figs["note"] == "PNG not written: kaleido failed: Transform failed with error code 1"
    assert figs["note"] in (tmp_path / "study.md").read_text()
