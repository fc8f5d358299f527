"""Reading a study (Run.study, report/study.py): study.json, its verdict rows and the figures'
numbers against a direct computation on planted curves and on the committed world study."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from cocomix_lens.rundir import LAYOUT, MissingPieceError, Run
from report.study import curves_figure, effects_text, figures, savings_figure, verdict_rows

COMMITTED = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "study_world"
CURVES = {"ntp": {"0": {"tokens": [10, 20, 30], "val_loss": [6.0, 5.0, 4.0]},
                  "1": {"tokens": [10, 20, 30], "val_loss": [6.4, 5.2, 4.6]}},
          "cocomix": {"0": {"tokens": [10, 20], "val_loss": [5.0, 4.5]}}}


def _traces(fig) -> dict[str, dict]:
    return {t["name"]: t for t in json.loads(fig.to_json())["data"]}


def test_curves_are_the_seed_mean_with_a_sample_std_band():
    traces = _traces(curves_figure(CURVES))
    ntp = np.array([[6.0, 5.0, 4.0], [6.4, 5.2, 4.6]])
    mean, std = ntp.mean(0), ntp.std(0, ddof=1)
    assert traces["ntp (n=2)"]["x"] == [10, 20, 30]
    assert traces["ntp (n=2)"]["y"] == pytest.approx(mean.tolist())
    # the band goes out along mean + std and back along mean - std
    assert traces["ntp band"]["y"] == pytest.approx([*(mean + std), *(mean - std)[::-1]])
    assert traces["ntp band"]["x"] == [10, 20, 30, 30, 20, 10]
    # one seed: no band width
    assert traces["cocomix band"]["y"] == pytest.approx([5.0, 4.5, 4.5, 5.0])


def test_savings_bar_skips_claims_whose_seeds_never_reach_the_target():
    def claim(cid, mean, std):
        return {"id": cid, "numbers": {"token_share_saved": {
            "fast": "cocomix", "reference": "ntp", "mean": mean, "std": std,
            "reached": 1, "per_seed": {"0": mean, "1": None}}}}

    fig = savings_figure([claim("a", 0.25, 0.05), claim("b", None, None),
                          claim("x", math.nan, math.nan)])
    bar = json.loads(fig.to_json())["data"][0]
    assert bar["x"] == ["(a) cocomix vs ntp [1/2 reached]"]
    assert bar["y"] == pytest.approx([25.0]) and bar["error_y"]["array"] == pytest.approx([5.0])


def test_effects_text_gives_mean_std_interval_and_sign_test():
    c = {"comparisons": [{"better": "cocomix", "worse": "ntp", "mean": 0.0828, "std": 0.1255,
                          "lo": -1.0446, "hi": 1.2102, "n": 2, "sign_p": 1.0},
                         {"better": "cocomix", "worse": "kd", "verdict": "not run"}],
         "numbers": {}}
    assert effects_text(c, sep=" | ") == ("cocomix vs ntp: +0.0828 ± 0.1255 [-1.0446, 1.2102] "
                                          "(n=2, sign p=1.00) | cocomix vs kd: not run")


def pipeline_run(path: Path) -> Path:
    """An (empty) pipeline run directory: Run.open needs its pipeline.json."""
    path.mkdir(exist_ok=True)
    (path / LAYOUT.pipeline.config).write_text("{}")
    return path


def test_committed_world_study_reads_back_with_one_row_per_claim(tmp_path):
    run = pipeline_run(tmp_path / "run")
    shutil.copytree(COMMITTED, run / LAYOUT.pipeline.study)
    doc = Run.open(run).study
    expected = json.loads((COMMITTED / "study.json").read_text())
    rows = verdict_rows(doc)
    assert [r["claim"] for r in rows] == [f"({c['id']}) {c['title']}" for c in expected["claims"]]
    assert [r["verdict"] for r in rows] == [c["verdict"] for c in expected["claims"]]
    a = rows[0]
    gap = expected["claims"][0]["comparisons"][0]
    assert f"{gap['mean']:+.4f} ± {gap['std']:.4f}" in a["effect"]
    saved = expected["claims"][0]["numbers"]["token_share_saved"]
    assert f"tokens saved {100 * saved['mean']:.1f} %" in a["numbers"]
    assert f"({saved['reached']}/{len(expected['settings']['seeds'])} seeds" in a["numbers"]
    figs = figures(doc)
    # the arms in the ablation table's order: ntp first, whatever study.json's key order
    names = [t["name"] for t in json.loads(figs["curves"].to_json())["data"]
             if not t["name"].endswith("band")]
    assert names == [f"{r['arm']} (n={r['n']})" for r in expected["ablations"]]
    cells = json.loads(figs["ablations"].to_json())["data"][0]["cells"]["values"]
    assert cells[1] == [f"{r['mean']:.4f} ± {r['std']:.4f}" for r in expected["ablations"]]


def test_no_study_is_missing_and_a_damaged_one_is_a_one_line_error(tmp_path):
    run = pipeline_run(tmp_path)
    assert not Run.open(run).has("study")
    with pytest.raises(MissingPieceError, match=r"the study step \(run=.*, seeds=3\)"):
        Run.open(run).study
    path = run / LAYOUT.pipeline.study_json
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"is not valid JSON .*report_only=True") as err:
        Run.open(run).study
    assert "\n" not in str(err.value)
    path.write_text('{"claims": []}')
    with pytest.raises(ValueError, match="has no .curves. field"):
        Run.open(run).study
