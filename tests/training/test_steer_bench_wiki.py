"""`cocomix-lens steer-bench` in wiki mode (training/steer_bench_wiki.py) on the session's
micro run of the topical corpus (no world oracle): `--quick` measures every family that
applies, the halves never share a prompt, a row reproduces from its JSON, and the concept
score reads the target latent on the continuation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cocomix_lens import Run
from cocomix_lens.sampling import Sampling
from cocomix_lens.steering.topic_eval import evaluate_method
from cocomix_lens.steering.topic_methods import FAMILIES, TopicMethod
from cocomix_lens.world.openings import Opening
from training.cli import main
from training.steer_bench_wiki import WIKI_SCORES, WORLD_ONLY, WikiBenchConfig, targets


@pytest.fixture(scope="module")
def wiki_bench(micro_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("wiki_bench")
    assert main(["steer-bench", "--run", str(micro_run[1]), "--quick", "--out", str(out),
                 "--no-progress"]) == 0  # not a world run: wiki mode on its own
    return out, json.loads((out / "results.json").read_text())


def test_quick_wiki_bench_measures_every_family_that_applies(wiki_bench):
    out, results = wiki_bench
    assert results["mode"] == "wiki" and len(results["topics"]) == 3
    families = {cell["method"]["family"] for row in results["rows"].values()
                for cell in row["cells"]}
    assert families == set(FAMILIES) - set(WORLD_ONLY)
    for row in results["rows"].values():
        s = row["summary"]["harmonic"]
        assert s["lo"] <= s["mean"] <= s["hi"]
        assert set(row["summary"]) >= {"concept", "fluency", "ppl", "sae_act", "harmonic"}
    assert (out / "results.md").read_text().count("\n|") == 2 + len(results["rows"])


def test_wiki_halves_never_share_a_prompt_and_the_target_is_off_on_them(wiki_bench,
                                                                         micro_run):
    _, results = wiki_bench
    run = Run.open(micro_run[1])
    from cocomix_lens.concepts.extractor import ConceptExtractor
    from cocomix_lens.steering.evaluate import encode_prompts

    ex = ConceptExtractor(run.teacher, run.sae, method="activation")
    for name, t in results["targets"].items():
        sel = [o["text"] for o in results["prompts"][name]["selection"]]
        rep = [o["text"] for o in results["prompts"][name]["report"]]
        assert len(sel) == len(rep) == 2 and not set(sel) & set(rep)
        ids = encode_prompts(run.tokenizer, sel + rep)
        acts = [float(ex.scores(p[None])[0, :, t["concept"]].max()) for p in ids]
        assert max(acts) <= 0.0
        assert t["context_doc"] not in {o["doc"] for o in
                                        results["prompts"][name]["selection"]
                                        + results["prompts"][name]["report"]}


def test_a_wiki_row_reproduces_from_its_method_and_sampling(wiki_bench, micro_run):
    _, results = wiki_bench
    run = Run.open(micro_run[1])
    for key in (results["best"]["diffmean"], "prompt_context/after"):
        cell = results["rows"][key]["cells"][0]
        method = TopicMethod.from_dict(cell["method"])
        topic = cell["method"]["topic"]
        openings = [Opening(**o) for o in results["prompts"][topic]["report"]]
        again = evaluate_method(run, method, openings, Sampling(**results["sampling"]),
                                cell["n_samples"], scores=WIKI_SCORES,
                                concept=results["targets"][topic]["concept"])
        for name in WIKI_SCORES:
            assert np.allclose(np.asarray(cell["values"][name], dtype=float),
                               again.values[name], atol=1e-5, equal_nan=True), (key, name)


def test_the_concept_score_rises_when_the_target_is_planted(micro_run):
    """A residual edit that makes the student write the token on whose repetition the
    target latent is most active raises the target's share of active tokens (and its mean
    activation) above the unsteered continuations' on the same prompts."""
    import torch

    from cocomix_lens.concepts.extractor import ConceptExtractor

    run = Run.open(micro_run[1])
    target = targets(run, WikiBenchConfig.quick())[0]
    ex = ConceptExtractor(run.teacher, run.sae, method="activation")
    repeated = torch.arange(run.tokenizer.get_vocab_size())[:, None].repeat(1, 6)  # [V, 6]
    with torch.no_grad():
        token = int((ex.scores(repeated)[:, 1:, target.concept] > 0).float().mean(1).argmax())
    w = run.student.W_U[:, token].detach().float()
    planted = TopicMethod("diffmean", "planted", target.name, 1.0,  # logits ~ W_U[:, token]
                          hook="ln_final.hook_normalized",
                          vector=tuple(float(x) for x in 500 * w / w.norm()))
    openings = [Opening(text, "", (), "", str(i)) for i, text in
                enumerate(["The river", "In the market the", "A small town"])]
    sampling = Sampling(max_new_tokens=8, seed=0)
    score = {m.family: evaluate_method(run, m, openings, sampling, 2, scores=WIKI_SCORES,
                                       concept=target.concept).values
             for m in (planted, TopicMethod("unsteered", "", target.name))}
    assert np.nanmean(score["diffmean"]["concept"]) > \
        np.nanmean(score["unsteered"]["concept"]) + 0.1
    assert np.nanmean(score["diffmean"]["sae_act"]) > np.nanmean(score["unsteered"]["sae_act"])


def test_the_readme_and_docs_quote_the_committed_wiki_results():
    """The README line and docs/steering.md quote the committed wiki bench's figures."""
    from helpers_training import CommittedBench

    bench = CommittedBench("steer_bench_wiki")
    results, rows, best, est, mean = (bench.results, bench.rows, bench.best, bench.est,
                                      bench.mean)
    line = bench.readme_line("Steering toward a concept on Wikipedia")
    for quoted in (est(best["diffmean"]), est("unsteered"), mean("prompt_context/before"),
                   mean(best["cocomix"]), mean("sae/best latent")):
        assert quoted in line, quoted
    docs = bench.docs()
    for key in (best["diffmean"], best["cocomix"], "prompt_context/before",
                "prompt_context/after", "sae/best latent", "random_direction/" +
                best["diffmean"].split("/", 1)[1], "unsteered"):
        assert est(key) in docs, key
    assert f"**{results['goals']['passed']} of {results['goals']['of']}**" in docs
    assert f"All {len(rows)} rows" in docs
