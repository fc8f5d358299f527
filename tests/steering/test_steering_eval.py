"""Measured steering on a micro pipeline run: bootstrap CIs, scoring with steering off, a
planted effect clear of the control, dose-response, and the steer-eval command."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cocomix_lens import ConceptExtractor, Run
from cocomix_lens.sampling import Sampling
from cocomix_lens.steering import SteeringSpec, steer
from cocomix_lens.steering.evaluate import (
    Evaluation,
    Harness,
    encode_prompts,
    evaluate_steering,
    generate_samples,
    live_concepts,
    random_control,
    score,
    sweep,
)
from cocomix_lens.steering.method import Method, resid_norm
from cocomix_lens.steering.scorers import SCORERS, Scorer, register_scorer, scorers_for
from cocomix_lens.steering.stats import bootstrap, bootstrap_diff

PROMPTS = ["the ship", "a star", "music and"]
FAST = Sampling(max_new_tokens=10)
FEW = Evaluation(n_samples=12, n_boot=500)


@pytest.fixture(scope="module")
def run_dir(micro_run):
    return micro_run[1]  # the session's (tests/conftest.py), read only


@pytest.fixture(scope="module")
def run(run_dir):
    return Run.open(run_dir)


@pytest.fixture(scope="module")
def planted(run):
    """Concept c, a control with a different best token, and a steerer that makes the student
    emit the token which most activates the aimed-at latent (added to its final residual)."""
    vocab = run.teacher.cfg.d_vocab
    toks = torch.stack([torch.zeros(vocab, dtype=torch.long), torch.arange(vocab)], 1)
    acts = ConceptExtractor(run.teacher, run.sae, method="activation").scores(toks)[:, 1]
    best_val, best_tok = acts.max(0)
    c = int(best_val.argmax())
    others = [i for i in best_val.argsort(descending=True).tolist()
              if best_tok[i] != best_tok[c] and best_val[i] > 0]
    control = others[0]

    def make(concept: int, alpha: float) -> Method:
        def hooks(model, prompt_len):
            v = model.W_U[:, best_tok[concept]].detach()
            v = alpha * v / v.norm()
            return model.hooks(fwd_hooks=[("ln_final.hook_normalized", lambda x, hook: x + v)])
        return Method(f"emit the top token of {concept}", "student", hooks, concept=concept,
                      strength=alpha, retarget=lambda c: make(c, alpha))

    return SimpleNamespace(c=c, control=control, make=make)


def test_bootstrap_interval_covers_the_mean_and_is_seeded():
    x = np.random.default_rng(0).normal(1.0, 2.0, size=400)
    a, b = bootstrap(x, seed=3), bootstrap(x, seed=3)
    assert a == b and a.lo < x.mean() < a.hi and a.mean == pytest.approx(x.mean())
    # the percentile interval matches the normal approximation mean +- 1.96 sd / sqrt(n)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert (a.hi - a.lo) / 2 == pytest.approx(half, rel=0.15)
    assert bootstrap(x, seed=4) != a
    assert bootstrap(np.full(10, 2.5)).lo == bootstrap(np.full(10, 2.5)).hi == 2.5
    d = bootstrap_diff(x + 1, x)  # a constant paired shift has a zero-width interval
    assert d.lo == pytest.approx(1) and d.hi == pytest.approx(1)


def test_bootstrap_refuses_empty_values():
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap(np.array([]))


def test_scores_equal_a_direct_computation(run):
    gens = generate_samples(run.student, run.tokenizer, encode_prompts(run.tokenizer, PROMPTS),
                            Sampling(max_new_tokens=8), Evaluation(n_samples=4))
    c = 5
    got = score(run, c, gens, scorers_for(run, ["sae_act", "ppl_teacher", "distinct_1"]))
    acts = ConceptExtractor(run.teacher, run.sae, method="activation").scores(gens.tokens)
    with torch.no_grad():
        logp = run.teacher(gens.tokens).log_softmax(-1)
    for i in range(4):
        p, n = int(gens.prompt_lens[i]), int(gens.gen_lens[i])
        gen = gens.tokens[i, p:p + n]
        assert got["sae_act"][i] == pytest.approx(float(acts[i, p:p + n, c].mean()), abs=1e-6)
        nll = -logp[i, torch.arange(p - 1, p + n - 1), gen].mean()
        assert got["ppl_teacher"][i] == pytest.approx(float(nll), rel=1e-5)
        assert got["distinct_1"][i] == pytest.approx(len(set(gen.tolist())) / n)


def test_batched_prompts_share_batches_and_a_lone_prompt_draws_as_before(run):
    """batch_prompts generates prompts of one token length together (fewer generate calls);
    a prompt of its own length is seeded as before, so its samples are the same tokens."""
    from cocomix_lens.steering.evaluate import prompt_groups

    prompts = encode_prompts(run.tokenizer, ["the ship", "the ship", "music and the ship sailed"])
    assert len(prompts[0]) != len(prompts[2])
    assert prompt_groups(prompts, True) == [[0, 1], [2]]
    assert prompt_groups(prompts, False) == [[0], [1], [2]]
    calls = []
    generate = run.student.generate
    run.student.generate = lambda *a, **k: calls.append(1) or generate(*a, **k)
    try:
        alone = generate_samples(run.student, run.tokenizer, prompts, FAST,
                                 Evaluation(n_samples=9))
        n_alone = len(calls)
        grouped = generate_samples(run.student, run.tokenizer, prompts, FAST,
                                   Evaluation(n_samples=9, batch_prompts=True))
    finally:
        del run.student.generate
    assert (n_alone, len(calls) - n_alone) == (3, 2)
    lone = [i for i in range(9) if i % 3 == 2]
    assert (grouped.prompt_lens == alone.prompt_lens).all()
    for i in lone:
        n = int(alone.prompt_lens[i] + alone.gen_lens[i])
        assert int(grouped.gen_lens[i]) == int(alone.gen_lens[i])
        assert torch.equal(alone.tokens[i, :n], grouped.tokens[i, :n])
        assert alone.texts[i] == grouped.texts[i]


def _hook_count(model) -> int:
    """TransformerLens hooks plus the model's own forward (pre-)hooks (steer adds both)."""
    return (sum(len(hp._forward_hooks) for hp in model.hook_dict.values())
            + len(model._forward_hooks) + len(model._forward_pre_hooks))


def test_scoring_runs_with_steering_off(run):
    seen = []

    def spy(r):
        seen.append((_hook_count(r.run.student), _hook_count(r.run.teacher)))
        return np.zeros(len(r.gens))

    register_scorer(Scorer("_spy", spy, "success", "hooks present while scoring"))
    try:
        spec = SteeringSpec().scale(3, 5.0)
        with steer(run.student, spec):  # the check can fail: inside, hooks are counted
            assert _hook_count(run.student) == 2
        evaluate_steering(run, spec, PROMPTS, FAST, replace(FEW, scorers=("_spy",)),
                          sae_strength=1.0)
    finally:
        SCORERS.pop("_spy")
    assert len(seen) == 6 and all(s == (0, 0) for s in seen)


def test_planted_effect_is_clear_of_unsteered_and_control(run, planted):
    res = evaluate_steering(run, planted.make(planted.c, 200.0), PROMPTS,
                            Sampling(max_new_tokens=12),
                            Evaluation(n_samples=24, n_boot=500, control=planted.control,
                                       scorers=("sae_act", "ppl_ntp")), sae_strength=None)
    arm = res.arms["cocomix"]
    assert arm.clear_of("sae_act") == {"above_unsteered": True, "above_control": True,
                                       "diff_unsteered_positive": True,
                                       "diff_control_positive": True}
    assert "sae_act *" in arm.table()


def test_random_control_is_another_live_concept_at_the_same_strength(run):
    live = set(live_concepts(run).tolist())
    picks = {random_control(run, 7, seed) for seed in range(20)}
    assert 7 not in picks and picks <= live and len(picks) > 1
    assert random_control(run, 7, 3) == random_control(run, 7, 3)
    res = evaluate_steering(run, SteeringSpec().add(7, 4.0, unit="prompt"), PROMPTS,
                            replace(FAST, seed=3), replace(FEW, scorers=("student_prob",)),
                            sae_strength=None)
    arm = res.arms["cocomix"]
    assert arm.control_concept == random_control(run, 7, 3) and arm.strength == 4.0


def test_a_control_equal_to_the_steered_concept_is_refused(run):
    with pytest.raises(ValueError, match="control=7 is the steered concept.*fix"):
        evaluate_steering(run, SteeringSpec().add(7, 4.0, unit="logit"), PROMPTS, FAST,
                          replace(FEW, control=7, scorers=("student_prob",)), sae_strength=None)


def test_a_raw_vector_first_edit_names_no_concept_to_score(run):
    spec = SteeringSpec().add_vector(None, 1.0, vector=[0.0] * run.student.cfg.d_model)
    with pytest.raises(ValueError, match="names no concept to score.*fix"):
        evaluate_steering(run, spec, PROMPTS, FAST, replace(FEW, scorers=("student_prob",)),
                          sae_strength=None)


def test_unsteered_and_zero_strength_runs_are_identical(run):
    res = evaluate_steering(run, SteeringSpec().add(7, 0.0, unit="prompt"), PROMPTS, FAST,
                            replace(FEW, scorers=("sae_act",)), sae_strength=0.0)
    for arm in res.arms.values():
        assert arm.values["steered"] == arm.values["unsteered"] == arm.values["control"]


def test_sweep_dose_response_is_monotone_on_a_planted_case(run, planted):
    sw = sweep(run, planted.c, "vector", [0.0, 20.0, 200.0], PROMPTS, FAST,
               Evaluation(n_samples=12, scorers=("sae_act",), control=planted.control,
                          n_boot=200), make=planted.make)
    means = sw.means("sae_act")
    assert means[0] == pytest.approx(sw.means("sae_act", "unsteered")[0])
    assert means[0] < means[1] < means[2]
    assert "unsteered" in sw.table() and len(sw.to_dict()["results"]) == 3


def test_a_shared_harness_draws_the_unsteered_samples_once(run, monkeypatch):
    ev = Evaluation(n_samples=6, n_boot=100, scorers=("sae_act", "student_prob"))
    harness = Harness(run, PROMPTS, FAST, ev)
    drawn = []
    real = harness.generate
    monkeypatch.setattr(harness, "generate",
                        lambda method, model="student": drawn.append(method) or real(method, model))
    concepts = live_concepts(run)[:2]
    shared = [sweep(run, c, "add", [3.0], harness=harness).results[0] for c in concepts]
    assert sum(m is None for m in drawn) == 1  # one unsteered draw for both concepts
    assert len(drawn) == 1 + 2 * len(concepts)  # + steered and control of each
    for c, got in zip(concepts, shared):  # the same numbers as a sweep on its own
        alone = sweep(run, c, "add", [3.0], PROMPTS, FAST, ev).results[0]
        assert got.values == alone.values and got.control == alone.control


def test_steer_eval_cli_prints_a_table_and_json(run_dir, tmp_path, capsys):
    from training.cli import main

    spec = tmp_path / "spec.json"
    SteeringSpec().scale(3, 4.0).save(spec)
    args = ["steer-eval", "--run", str(run_dir), "--spec", str(spec), "--n-samples", "6",
            "--max-new-tokens", "8", "--prompt", "the ship", "--prompt", "a star"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "CoCoMix concept steering" in out and "SAE steering" in out and "sae_act" in out
    assert main(args + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    arm = data["arms"]["cocomix"]
    assert arm["concept"] == 3 and len(arm["values"]["steered"]["sae_act"]) == 6


def test_steer_eval_cli_bad_spec_is_one_line(run_dir, tmp_path, capsys):
    from training.cli import main

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"edits": [{"op": "wiggle", "concept": 3, "value": 4.0}]}))
    assert main(["steer-eval", "--run", str(run_dir), "--spec", str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    assert "wiggle" in err and "\n" not in err
    spec.write_text(json.dumps({"edits": [{"op": "scale", "concept": 9999, "value": 4.0}]}))
    assert main(["steer-eval", "--run", str(run_dir), "--spec", str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    assert "out of range" in err and "\n" not in err and "unexpected" not in err
    SteeringSpec().scale(3, 4.0).save(spec)
    assert main(["steer-eval", "--run", str(run_dir), "--spec", str(spec), "--topic",
                 "sea"]) == 2
    assert "not a world run" in capsys.readouterr().err


def test_resid_norm_runs_each_prompt_on_its_own(run):
    """Prompts never attend to each other: the norm is the mean over each prompt's own
    forward, and 20 prompts fit however short n_ctx is."""
    hook = run.sae.cfg.metadata.hook_name
    ids = encode_prompts(run.tokenizer, PROMPTS * 7)
    norms = []
    for p in ids:
        _, cache = run.teacher.run_with_cache(p[None], names_filter=hook)
        norms += cache[hook][0].norm(dim=-1).tolist()
    assert sum(len(p) for p in ids) > run.teacher.cfg.n_ctx
    assert resid_norm(run.teacher, hook, ids) == pytest.approx(float(np.mean(norms)), rel=1e-6)


def test_results_give_per_prompt_figures_examples_and_the_resolved_spec(run):
    res = evaluate_steering(run, SteeringSpec().add(7, 4.0, unit="logit"), PROMPTS, FAST,
                            replace(FEW, scorers=("student_prob", "ppl_ntp")),
                            sae_strength=None)
    arm = res.arms["cocomix"]
    per = arm.per_prompt("student_prob")
    vals = np.asarray(arm.values["steered"]["student_prob"])
    assert per == pytest.approx([vals[j::3].mean() for j in range(3)])
    assert arm.spread("student_prob") == {"min": min(per), "median": float(np.median(per)),
                                          "max": max(per)}
    doc = res.to_dict()
    assert doc["arms"]["cocomix"]["method"]["spec"]["edits"][0] == {
        "op": "add", "concept": 7, "value": 4.0, "positions": "all", "unit": "logit"}
    assert doc["settings"]["sampling"] == FAST.kwargs()
    assert len(arm.examples["steered"]) == 3 and "per prompt" in arm.table()
    assert "the ship" in arm.table()
