"""Screening the densest concepts for steering: the pass test, the choice of concept and
strength on planted results, the real pipeline on a micro run, and `steer-eval --densest`."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from cocomix_lens import Run
from cocomix_lens.sampling import Sampling
from cocomix_lens.steering.evaluate import Evaluation, sweep
from cocomix_lens.steering.results import ArmResult, MetricInfo, SweepResult
from training import steering_screen as screen
from training.steering_screen import (
    FluencyBounds,
    ScreenSettings,
    densest_concepts,
    pick_strength,
    steer_densest,
    within,
)

METRICS = [MetricInfo("sae_act", "success", ""), MetricInfo("student_prob", "success", ""),
           MetricInfo("ppl_ntp", "fluency", "", log_scale=True)]
FAST = ScreenSettings(screen_samples=6, sweep_samples=6, samples=6, n_boot=200)
SHORT = Sampling(max_new_tokens=8)


def planted(steered: float, control: float, ppl: float = 10.0, n: int = 40,
            concept: int = 0, strength: float = 1.0) -> ArmResult:
    """An ArmResult whose success metrics sit around the given means (unsteered at 1.0) and
    whose steered NTP perplexity is `ppl` (unsteered and control 10)."""
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.05, n)

    def vals(mean: float, ppl_: float) -> dict[str, list[float]]:
        return {"sae_act": list(mean + noise), "student_prob": list(mean / 10 + noise / 10),
                "ppl_ntp": list(np.log(ppl_) + noise)}

    values = {"steered": vals(steered, ppl), "unsteered": vals(1.0, 10.0),
              "control": vals(control, 10.0)}
    return ArmResult("cocomix", "planted", concept, 99, strength, METRICS, values, n_boot=200)


def test_clear_needs_both_the_unsteered_run_and_the_control_beaten():
    assert planted(2.0, 1.0).clear("sae_act")
    assert not planted(2.0, 2.0).clear("sae_act")  # a control as high: damage, not steering
    assert not planted(1.0, 1.0).clear("student_prob")
    assert planted(2.0, 1.0).clear("student_prob")


def test_fluency_bounds_and_the_chosen_strength():
    b = FluencyBounds(max_ppl_ratio=1.5)
    assert within(planted(2, 1, ppl=14.0), "ppl_ntp", b)   # x1.4
    assert not within(planted(2, 1, ppl=16.0), "ppl_ntp", b)  # x1.6
    results = [planted(2, 1, ppl=p, strength=s) for s, p in ((1, 10.0), (2, 14.0), (4, 30.0))]
    sw = SweepResult(0, "add", "cocomix", [1.0, 2.0, 4.0], results, {})
    assert pick_strength(sw, "ppl_ntp", b) == 2.0
    # none within the bound: the smallest strength
    assert pick_strength(sw, "ppl_ntp", FluencyBounds(max_ppl_ratio=0.5)) == 1.0


@pytest.fixture(scope="module")
def run(micro_run):
    return Run.open(micro_run[1])  # the session's (tests/conftest.py), read only


def test_densest_concepts_are_the_live_ones_by_prediction_density(run):
    cat = run.catalogue.concepts
    got = densest_concepts(run, 5)
    assert [r for _, _, r in got] == [1, 2, 3, 4, 5]
    dens = [d for _, d, _ in got]
    assert dens == sorted(dens, reverse=True)
    assert all(not cat.loc[c, "dead"] and cat.loc[c, "prediction_density"] == d
               for c, d, _ in got)
    live = cat.loc[~cat["dead"], "prediction_density"]
    assert dens[0] == live.max() and (live > dens[-1]).sum() <= 4


def test_densest_concepts_of_one_variable_keep_their_rank_among_all_live_ones():
    """`truth="topic"` screens the densest concepts whose ground-truth match is a topic, in
    density order, each with its rank among every live concept; a variable no concept
    matches is refused in one line naming the argument and the variables there are."""
    import pandas as pd

    cat = pd.DataFrame({"dead": [False, False, True, False, False, False],
                        "prediction_density": [0.9, 0.5, 0.95, 0.7, 0.2, 0.6],
                        "truth": ["tense=past", "topic=sea", "topic=war", "", "topic=art",
                                  "act=intro"]})
    fake = type("R", (), {"catalogue": type("C", (), {"concepts": cat})()})()
    assert densest_concepts(fake, 2, "topic") == [(1, 0.5, 4), (4, 0.2, 5)]  # 2 dead: skipped
    assert densest_concepts(fake, 1, "tense") == [(0, 0.9, 1)]
    assert [c for c, _, _ in densest_concepts(fake, 10)] == [0, 3, 5, 1, 4]
    with pytest.raises(ValueError, match=r"truth='place'.*among \['act', 'tense', 'topic'\]"):
        densest_concepts(fake, 3, "place")


def test_the_screen_is_sweep_at_one_strength_and_picks_the_densest_passing(run, monkeypatch):
    res = steer_densest(run, replace(FAST, n=3, strength=4.0), SHORT)
    assert [r["concept"] for r in res.screen] == [c for c, _, _ in densest_concepts(run, 3)]
    ev = Evaluation(n_samples=6, n_boot=FAST.n_boot, batch_prompts=FAST.batch_prompts,
                    scorers=("sae_act", "student_prob", "ppl_ntp"))
    for row in res.screen:  # unsteered and control drawn once, yet each as a sweep alone
        direct = sweep(run, row["concept"], "add", [4.0], None, SHORT, ev).results[0]
        assert row["result"].values == direct.values  # seeded: the same numbers
        same = json.dumps(row["result"].to_dict()) == json.dumps(direct.to_dict())
        assert same  # (as text: prompts without samples give NaN, which != itself)
        assert row["clear"] == (direct.clear("sae_act") and direct.clear("student_prob"))
    json.dumps(res.to_dict())  # JSON-ready whatever passed

    # Planted: only the second-densest concept steers; it is chosen, swept and evaluated
    # on the final seed at the strength the fluency bound allows.
    order = [c for c, _, _ in densest_concepts(run, 3)]
    calls = []

    def fake_sweep(run_, c, op, strengths, prompts, sampling, evaluation, arm="cocomix"):
        calls.append((c, arm, tuple(strengths), sampling.seed))
        good = c == order[1]
        rs = [planted(2.0 if good else 1.0, 1.0, ppl=10.0 * (1 + s / 10), concept=c,
                      strength=s) for s in strengths]
        return SweepResult(c, op, arm, list(strengths), rs, {})

    def fake_screen(harness, c, strength, controls):
        return fake_sweep(run, c, "add", [strength], None, harness.sampling, None).results[0]

    finals = []

    def fake_eval(run_, spec, prompts, sampling, evaluation, sae_strength):
        finals.append((spec.edits[0].concept, spec.edits[0].value, sampling.seed,
                       sae_strength))
        from cocomix_lens.steering.results import SteeringEvaluation
        return SteeringEvaluation({"cocomix": planted(2.0, 1.0, concept=order[1])}, {})

    monkeypatch.setattr(screen, "sweep", fake_sweep)
    monkeypatch.setattr(screen, "screen_concept", fake_screen)
    monkeypatch.setattr(screen, "evaluate_steering", fake_eval)
    res = steer_densest(run, replace(FAST, n=3, add=(2, 4, 8), sae=(1, 3, 9), final_seed=7),
                        SHORT)
    assert [r["clear"] for r in res.screen] == [False, True, False]
    assert res.concept == order[1] and res.rank == 2
    # ppl ratio 1 + s/10 <= 1.5: add 4 (x1.4) is the largest allowed, SAE 3 (x1.3)
    assert res.chosen == {"cocomix_add": 4.0, "sae": 3.0}
    assert finals == [(order[1], 4.0, 7, 3.0)]
    assert (order[1], "cocomix", (2, 4, 8), 0) in calls and (order[1], "sae", (1, 3, 9), 0) in calls
    assert res.clear() == {"sae_act": True, "student_prob": True}
    assert "Concept" in res.markdown() and "rank 2" in res.markdown()


def test_steer_eval_densest_writes_json_and_tables(run, tmp_path, capsys):
    from training.cli import main

    out = tmp_path / "dense"
    args = ["steer-eval", "--run", str(run.path), "--densest", "2", "--screen-samples", "4",
            "--sweep-samples", "4", "--n-samples", "4", "--max-new-tokens", "6", "--out",
            str(out)]
    assert main(args) == 0
    assert "## Screen: the 2 densest" in capsys.readouterr().out
    doc = json.loads((out / "steering.json").read_text())
    assert [r["concept"] for r in doc["screen"]] == [c for c, _, _ in densest_concepts(run, 2)]
    assert (out / "steering.md").read_text().startswith("# Steering a densely predicted")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"edits": [{"op": "add", "concept": 1, "value": 2.0}]}))
    assert main(["steer-eval", "--run", str(run.path), "--spec", str(spec),
                 "--out", str(out)]) == 2
    assert "--out goes with --densest" in capsys.readouterr().err
    assert main(["steer-eval", "--run", str(run.path), "--spec", str(spec),
                 "--truth", "topic"]) == 2
    assert "--truth goes with --densest" in capsys.readouterr().err
    assert main(args[:5] + ["--truth", "place"]) == 2  # the micro run has no ground truth
    err = capsys.readouterr().err
    assert "--truth 'place'" in err and "fix: screen without" in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exit_:
        main(["steer-eval", "--run", str(run.path), "--densest", "0"])
    assert exit_.value.code == 2
    assert "--densest: 0 is out of range" in capsys.readouterr().err
