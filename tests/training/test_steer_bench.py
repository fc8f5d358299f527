"""`cocomix-lens steer-bench` (training/steer_bench.py) on a micro world run: every family is
measured on the report half only, a row reproduces from its JSON, an interrupted bench resumes
from its cells, and `--quick` stays CI-sized."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cocomix_lens import Run
from cocomix_lens.rundir import LAYOUT
from cocomix_lens.sampling import Sampling
from cocomix_lens.steering.topic_eval import evaluate_method, harmonic
from cocomix_lens.steering.topic_methods import FAMILIES, TopicMethod
from cocomix_lens.world.openings import Opening
from training.cli import main
from training.pipeline import run_pipeline
from training.pipeline_config import apply_overrides, pipeline_preset
from training.steer_bench import CELLS, BenchConfig, run_bench

TOPICS = ["sea", "farming"]


@pytest.fixture(scope="module")
def world_run(tmp_path_factory):
    cfg = apply_overrides(pipeline_preset("micro"), {"data.corpus": "world",
                                                     "data.max_docs": "600",
                                                     "data.vocab_size": "1024"})
    cfg.student.overrides["n_ctx"] = 128  # room for an opening, a cue and a continuation
    out = tmp_path_factory.mktemp("bench") / "run"
    run_pipeline(cfg, out)
    return out


@pytest.fixture(scope="module")
def bench(world_run):
    out = world_run / LAYOUT.pipeline.steer_bench  # where the CLI and the app look
    cfg = BenchConfig.quick()
    cfg.topics = TOPICS
    t0 = time.perf_counter()
    results = run_bench(Run.open(world_run), out, cfg)
    return out, results, time.perf_counter() - t0


def test_the_best_variant_is_one_every_topic_has():
    """A concept-set variant that a one-concept topic lacks cannot be the recipe for every
    topic, however well it does on the topics that have it."""
    from training.steer_bench_report import best_variant, ranked_variants

    chosen = {"sea": {"cocomix/a": {"selection_hm": 0.2}, "cocomix/b": {"selection_hm": 0.1},
                      "diffmean/x": {"selection_hm": 0.9}},
              "war": {"cocomix/a": {"selection_hm": 0.3}}}
    assert ranked_variants(chosen, "cocomix/") == ["cocomix/a"]
    chosen["war"]["cocomix/b"] = {"selection_hm": 0.5}
    assert best_variant(chosen, "cocomix/") == "cocomix/b"  # (0.1 + 0.5) / 2 > 0.25


def test_harmonic_mean_is_zero_when_any_score_is_zero():
    h = harmonic([np.array([1.0, 0.5, 0.0]), np.array([1.0, 0.5, 1.0]),
                  np.array([1.0, 0.25, 1.0])])
    assert np.allclose(h, [1.0, 3 / (2 + 2 + 4), 0.0])


def test_quick_bench_measures_every_family_on_the_report_half(bench):
    out, results, _ = bench
    # CI-sized by construction, not by a clock (the wall time is a benchmark figure: the
    # results record it): one strength per method and a bounded number of cells per topic
    assert all(len(g) == 1 for g in BenchConfig.quick().grids.values())
    # 32 + the fluent row and its control (2) + the confirm round (unsteered and at most
    # confirm_top = 2 candidates for each of 3 tuned groups: 7) + the start positions (2 ops
    # x at most 3 concept sets, and DiffMean at the concept layer and in c_t, at one
    # "new_tokens" span, each selected and reported: 16)
    assert results["cells"]["total"] <= 57 * len(TOPICS), results["cells"]
    assert any(k.endswith("/new_tokens:4") for k in results["rows"])
    families = {cell["method"]["family"] for row in results["rows"].values()
                for cell in row["cells"]}
    # prompt_context: the wiki mode's prompting; switch_vector: benchmarks/steer_sentences.py
    assert families == set(FAMILIES) - {"prompt_context", "switch_vector"}
    for t in TOPICS:
        sel = {o["text"] for o in results["prompts"][t]["selection"]}
        rep = {o["text"] for o in results["prompts"][t]["report"]}
        assert sel and rep and not sel & rep
        assert all(o["topic"] != t for o in results["prompts"][t]["report"])
    for row in results["rows"].values():
        for cell in row["cells"]:
            assert set(cell["prompts"]) == {o["text"] for o in
                                            results["prompts"][cell["method"]["topic"]]["report"]}
        s = row["summary"]["harmonic"]
        assert s["lo"] <= s["mean"] <= s["hi"]
    assert (out / "results.md").read_text().count("\n|") == 2 + len(results["rows"])  # + rule
    assert json.loads((out / "results.json").read_text())["rows"].keys() == results["rows"].keys()


def test_a_row_reproduces_from_its_method_and_sampling(bench, world_run):
    _, results, _ = bench
    run = Run.open(world_run)
    for key in ("cocomix/add/single/all", "diffmean_vector/all", "prompt_switch"):
        cell = results["rows"][key]["cells"][0]
        method = TopicMethod.from_dict(cell["method"])
        topic = cell["method"]["topic"]
        openings = [Opening(**o) for o in results["prompts"][topic]["report"]]
        again = evaluate_method(run, method, openings, Sampling(**results["sampling"]),
                                cell["n_samples"])
        for name, values in cell["values"].items():
            assert np.allclose(np.asarray(values, dtype=float), again.values[name],
                               atol=1e-5, equal_nan=True), (key, name)


def test_grammar_holds_clears_the_floor_by_one_standard_error():
    from types import SimpleNamespace

    from training.steer_bench_report import grammar_holds

    cell = SimpleNamespace(values={"fluency": np.array([1.0, 1.0, 1.0, 0.0, np.nan])})
    # mean 0.75 over the 4 scored continuations, standard error 0.5 / 2 = 0.25
    assert grammar_holds(cell, 0.5) and not grammar_holds(cell, 0.51)
    assert not grammar_holds(SimpleNamespace(values={"fluency": np.array([np.nan])}), 0.0)


class _Cells:
    """A stand-in bench: fixed cells per (strength, half); records what it is asked to fill."""

    def __init__(self, cells, confirm_top=2, confirm_rounds=2):
        from types import SimpleNamespace

        self.cfg = SimpleNamespace(max_grammar_drop=0.10, confirm_top=confirm_top,
                                   confirm_rounds=confirm_rounds)
        self.cells, self.filled = cells, []

    def fill(self, jobs):
        self.filled.append(sorted((m.strength or 0.0, half) for m, half in jobs))

    def cell(self, method, half):
        from types import SimpleNamespace

        grammar, hm = self.cells[(method.strength, half)]
        return SimpleNamespace(values={"fluency": np.asarray(grammar, dtype=float)},
                               harmonic=np.full(len(grammar), hm))


def _edit(strength):
    return TopicMethod("cocomix", "add/set/all", "sea", strength)


def _choose(cells, **kw):
    from training.steer_bench_report import grammar_bounded

    bench = _Cells(cells, **kw)
    grid = [_edit(s) for s in (1.0, 2.0, 3.0, 4.0, 8.0, 12.0)]
    return grammar_bounded(bench, {"g": ("sea", grid)})["g"].strength, bench.filled


def test_the_grammar_bounded_choice_is_confirmed_on_more_continuations():
    """Selection-half candidates that only looked grammatical on 10 continuations lose to the
    first, in harmonic-mean order, that holds grammar on the confirm cells (2 at a time);
    the one below the bound is never scored again; none holding: the gentlest."""
    ones, lucky = [1.0] * 30, [1.0] * 20 + [0.4] * 10  # 0.80 < 0.90 on the confirm cells
    cells = {(None, "selection"): ([1.0] * 10, 0.0), (None, "confirm"): (ones, 0.0),
             (12.0, "selection"): ([0.7] * 10, 0.9),           # below the bound
             (8.0, "selection"): ([1.0] * 9 + [0.5], 0.5), (8.0, "confirm"): (lucky, 0.45),
             (4.0, "selection"): ([1.0] * 8 + [0.6] * 2, 0.4), (4.0, "confirm"): (lucky, 0.4),
             (3.0, "selection"): ([1.0] * 10, 0.3), (3.0, "confirm"): ([1.0] * 29 + [0.7], 0.3),
             (2.0, "selection"): ([1.0] * 10, 0.2), (2.0, "confirm"): (ones, 0.2),
             (1.0, "selection"): ([1.0] * 10, 0.1), (1.0, "confirm"): (ones, 0.1)}
    strength, filled = _choose(cells)
    assert strength == 3.0  # 0.99 - 0.01 >= 0.90, and a better harmonic mean than 2.0's
    assert filled == [[(0.0, "confirm")], [(4.0, "confirm"), (8.0, "confirm")],
                      [(2.0, "confirm"), (3.0, "confirm")]]
    cells[(3.0, "confirm")] = cells[(2.0, "confirm")] = (lucky, 0.3)
    cells[(1.0, "selection")] = ([1.0] * 9 + [0.95], 0.1)
    assert _choose(cells)[0] == 1.0  # two rounds, none holds: the smallest strength
    cells[(1.0, "confirm")] = (lucky, 0.1)
    assert _choose(cells, confirm_rounds=3)[0] == 1.0  # nothing holds in three either
    # a grid of several variants (the fluent row): the most grammatical on the selection half
    from training.steer_bench_report import grammar_bounded

    mixed = [_edit(8.0), TopicMethod("cocomix", "add/single/all", "sea", 2.0), _edit(1.0)]
    cells[(2.0, "selection")] = ([1.0] * 10, 0.2)
    assert grammar_bounded(_Cells(cells), {"g": ("sea", mixed)})["g"].strength == 2.0


def test_the_fluent_row_is_a_confirmed_cocomix_edit_with_its_own_control(bench):
    """Per topic: a CoCoMix variant and strength of the selection grid, scored again in the
    confirm round, reported beside a random-concept control of the same edit."""
    from training.steer_bench_report import FLUENT

    out, results, _ = bench
    confirmed = {(c["method"]["topic"], c["method"]["variant"], c["method"]["strength"])
                 for c in map(json.loads, (out / CELLS).read_text().splitlines())
                 if c["half"] == "confirm"}
    for t in TOPICS:
        pick = results["fluent"][t]
        assert (t, pick["recipe"], pick["strength"]) in confirmed
        rows = {r: next(c for c in results["rows"][r]["cells"] if c["method"]["topic"] == t)
                for r in (FLUENT, "random_concept/fluent")}
        steered, control = rows[FLUENT]["method"], rows["random_concept/fluent"]["method"]
        assert steered["extra"]["recipe"] == pick["recipe"] == control["extra"]["recipe"]
        assert steered["strength"] == pick["strength"] == control["strength"]
        assert len(control["extra"]["concepts"]) == len(steered["extra"]["concepts"])
        assert not set(control["extra"]["concepts"]) & set(steered["extra"]["concepts"])
    assert results["goals_fluent"]["method"] == FLUENT


def test_an_interrupted_bench_resumes_from_its_cells(bench, world_run):
    out, results, _ = bench
    lines = (out / CELLS).read_text().splitlines()
    (out / CELLS).write_text("\n".join(lines[:-3]) + "\n" + lines[-3][:20])  # torn line
    cfg = BenchConfig.quick()
    cfg.topics = TOPICS
    again = run_bench(Run.open(world_run), out, cfg)
    after = (out / CELLS).read_text().splitlines()
    assert len(after) == len(lines) and all(json.loads(line) for line in after)
    assert {k: r["summary"] for k, r in again["rows"].items()} == \
        {k: r["summary"] for k, r in results["rows"].items()}


def test_cells_of_other_weights_at_the_same_out_are_not_reused(bench, world_run, tmp_path):
    """The cell cache and the topic means are keyed by the run's weights: the same OUT given
    a retrained (here: perturbed) student computes every cell anew; the same run, none."""
    import shutil

    import torch

    out, results, _ = bench
    copy = tmp_path / "bench"
    shutil.copytree(out, copy)
    cfg = BenchConfig.quick()
    cfg.topics = TOPICS
    same = run_bench(Run.open(world_run), copy, cfg)
    assert same["cells"]["computed"] == 0
    assert same["run_fingerprint"] == results["run_fingerprint"]
    run = Run.open(world_run)
    with torch.no_grad():
        run.student.W_U.add_(0.05)  # another student at the same path
    other = run_bench(run, copy, cfg)
    assert other["run_fingerprint"] != results["run_fingerprint"]
    assert other["cells"]["computed"] == same["cells"]["total"]  # every cell made anew
    made = json.loads((copy / "topic_means.json").read_text())["made_from"]
    assert made["run"] == other["run_fingerprint"]


def test_cli_resumes_the_bench_in_the_runs_piece(bench, world_run, capsys):
    _, results, _ = bench
    assert main(["steer-bench", "--run", str(world_run), "--quick", "--topics", *TOPICS,
                 "--no-progress"]) == 0
    assert "| cocomix/add/single/all" in capsys.readouterr().out
    assert Run.open(world_run).steer_bench["rows"].keys() == results["rows"].keys()


def test_cli_prompts_sets_the_openings_per_topic(world_run, tmp_path, capsys):
    assert main(["steer-bench", "--run", str(world_run), "--quick", "--topics", "sea",
                 "--prompts", "6", "--out", str(tmp_path), "--no-progress"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["n_prompts"] == 6
    assert {len(results["prompts"]["sea"][h]) for h in ("selection", "report")} == {3}
    assert BenchConfig().n_prompts == 40 and BenchConfig.quick().n_prompts == 4
    capsys.readouterr()


def test_cli_refuses_a_run_without_the_world_oracle(micro_run, tmp_path, capsys):
    run_dir = micro_run[1]  # the session's topical run (tests/conftest.py), read only
    assert main(["steer-bench", "--run", str(run_dir), "--mode", "world", "--quick", "--out",
                 str(tmp_path / "o")]) != 0
    assert "not a world run" in capsys.readouterr().err


def test_generate_toward_a_topic_prints_what_the_library_gives(world_run, capsys):
    from cocomix_lens.sampling import Sampling
    from cocomix_lens.steering.toward import toward

    prompt = "Anna was a nurse."
    assert main(["generate", "--run", str(world_run), "--prompt", prompt, "--toward", "sea",
                 "--seed", "1", "--max-new-tokens", "8"]) == 0
    run = Run.open(world_run)
    spec, _ = toward(run, "sea")
    expected = run.student.generate(prompt, **Sampling(max_new_tokens=8, seed=1).kwargs(),
                                    steering=spec)
    assert capsys.readouterr().out == expected + "\n"


def test_generate_keep_grammar_prints_the_measured_edit_or_one_line_naming_the_fix(
        world_run, capsys, caplog):
    import logging

    from cocomix_lens.sampling import Sampling
    from cocomix_lens.steering.toward import toward

    prompt = "Anna was a nurse."
    with caplog.at_level(logging.INFO, logger="training.commands.generate"):
        assert main(["generate", "--run", str(world_run), "--prompt", prompt, "--toward",
                     "sea", "--keep-grammar", "--seed", "1", "--max-new-tokens", "8"]) == 0
    run = Run.open(world_run)
    spec, how = toward(run, "sea", keep_grammar=True)
    assert "kept grammar within 10 points" in how and how in caplog.text  # the flag reached it
    expected = run.student.generate(prompt, **Sampling(max_new_tokens=8, seed=1).kwargs(),
                                    steering=spec)
    assert capsys.readouterr().out == expected + "\n"
    assert main(["generate", "--run", str(world_run), "--prompt", prompt,
                 "--keep-grammar"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "fix: add --toward TOPIC" in err
    assert main(["generate", "--run", str(world_run), "--prompt", prompt, "--toward", "violin",
                 "--keep-grammar"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "drop --keep-grammar True" in err


def test_a_topics_best_concept_prefills_the_benchs_best_single_concept_edit(bench, world_run):
    from cocomix_lens.steering.best import best_setting

    _, results, _ = bench
    run = Run.open(world_run)
    concept = results["topic_concepts"]["sea"]["concepts"][0]
    setting = best_setting(run, concept)
    singles = {k: r["summary"]["harmonic"]["mean"] for k, r in results["rows"].items()
               if k.startswith("cocomix/") and k.endswith("/single/all")}
    best = max(singles, key=singles.get)
    assert setting.op == best.split("/")[1] and "steer-bench" in setting.source
    assert setting.strength == results["selection"]["sea"][best]["strength"]


SCORED_WITHOUT_IMPORT = """
import sys
from cocomix_lens import Run
from cocomix_lens.sampling import Sampling
from cocomix_lens.steering import SteeringSpec
from cocomix_lens.steering.evaluate import Evaluation, evaluate_steering

run = Run.open(sys.argv[1])
assert "cocomix_lens.world.steering_scorers" not in sys.modules
res = evaluate_steering(run, SteeringSpec().add(0, 4.0, unit="logit"), ["Anna was a baker."],
                        Sampling(max_new_tokens=6), Evaluation(n_samples=2, n_boot=20,
                                                               extras={"topic": "sea"}),
                        sae_strength=None)
print(" ".join(m.name for m in res.arms["cocomix"].metrics))
"""


def test_a_world_run_is_scored_by_the_oracle_whatever_the_caller_imported(world_run):
    """A library user who never imports cocomix_lens.world (a fresh interpreter) still gets
    the oracle metrics on a world run: the run registers them when it is scored."""
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", SCORED_WITHOUT_IMPORT, str(world_run)],
                         capture_output=True, text=True, cwd=repo,
                         env={**os.environ, "PYTHONPATH": str(repo)})
    assert out.returncode == 0, out.stderr[-2000:]
    names = set(out.stdout.split())
    assert {"oracle_on_target", "oracle_grammatical", "oracle_relevance"} <= names
    assert "sae_act" in names


def test_the_readme_and_docs_quote_the_committed_results():
    """The README line and docs/steering.md quote the committed world bench's figures."""
    from helpers_training import CommittedBench

    bench = CommittedBench("steer_bench_world")
    results, best, est, mean = bench.results, bench.best, bench.est, bench.mean
    goals, per_topic = results["goals"], results["goals_per_topic_strength"]
    line = bench.readme_line("Steering toward a topic")
    for quoted in (est("prompt_switch"), est(best["diffmean"]), est(best["cocomix"]),
                   mean("sae/best latent"), f"{per_topic['passed']} of {per_topic['of']}",
                   f"({goals['passed']} at its one best strength)",
                   f"recipe chosen per topic on {results['goals_fluent']['passed']}",
                   f"{results['wall_s'] // 60:.0f} min"):
        assert quoted in line, quoted
    docs = bench.docs()
    plain = docs.replace("**", "")
    for key in ("prompt_switch", best["diffmean"], best["cocomix"], best["cocomix"] + "@topic",
                "sae/best latent", "unsteered"):
        assert est(key) in plain, key
    assert f"**{goals['passed']} of {goals['of']}**" in docs
    assert f"**{per_topic['passed']} of {per_topic['of']}**" in docs
    fluent = results["goals_fluent"]
    assert f"(`fluent`) **{fluent['passed']} of {fluent['of']}**" in docs
    assert est("cocomix/fluent") in plain
    tuned = results["goals_tuned"]
    where = {"all": "all positions", "generated": "generated positions",
             **{f"new_tokens:{n}": f"the first {n} new tokens" for n in (4, 8)}}
    for key, passed in tuned.items():  # the other tuned variants, each with its count
        if key != best["cocomix"] + "@topic":
            _, op, which, pos = key.removesuffix("@topic").split("/")
            assert f"`{op}` {which} at {where[pos]} {passed}" in " ".join(docs.split()), key
    sel = results["recommended"]["selection_hm"]
    assert f"({sel['one_strength']:.3f} vs {sel['per_topic']:.3f}" in docs


def test_switch_means_read_c_t_at_the_end_of_each_switch_line(world_run):
    """`steer_topics.switch_means` (benchmarks/steer_sentences.py's transplant) equals the mean of
    the student's c_t at the last token of opening + switch line, computed prompt by prompt."""
    import torch

    from cocomix_lens.data.tokenizer import prompt_ids
    from cocomix_lens.world.openings import openings, switch_line
    from cocomix_lens.world.steer_topics import switch_means

    run, hook = Run.open(world_run), "concept.hook_vector"
    means = switch_means(run, [hook], TOPICS, n_openings=3)
    for t in TOPICS:
        pool = [o for o in openings(run.shards, "train", limit=12) if o.topic != t][:3]
        rows = []
        for o in pool:
            ids = torch.tensor([prompt_ids(run.tokenizer, o.text + switch_line(t, o.tense))])
            with torch.no_grad():
                _, cache = run.student.run_with_cache(ids, names_filter=hook)
            rows.append(cache[hook][0, -1].double().numpy())
        assert means.counts[hook][TOPICS.index(t)] == len(pool) > 0
        assert np.allclose(means.mean(hook, t), np.mean(rows, 0), atol=1e-5)
