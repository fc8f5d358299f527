"""`cocomix-lens steer-bench` on a run without the world oracle (Wikipedia): steering toward
a fixed set of the run's concepts, scored by models instead of the oracle.

    results = run_wiki_bench(Run.open("runs/wiki"), Path("out"), WikiBenchConfig())

Targets (`targets`): live concepts whose teacher-SAE activation density lies in
[`min_density`, `max_density`] (frequent enough to measure, not the latents that fire on
every other token) and whose explanation's head keyword is a word (two or more letters: not
<|endoftext|>, whose latents fire on every prompt's first token, nor a one-letter fragment),
best detection AUROC first, one per head keyword (so no two targets are explained by the
same word), the first `n_targets` that have `n_prompts` prompts (below).
Prompts (`wiki_splits`): the first `prompt_tokens` tokens of validation documents (one token
length, so a cell's prompts generate as one batch) on which the target latent is not active
and which are not the document of its prompting context; per target a seeded draw of
`n_prompts`, the first half to choose strengths on (selection), the second to report on.

Scores per continuation (`WIKI_SCORES`), read with every edit off: concept = share of the
generated tokens where the target is among the teacher SAE's active latents (`sae_active`;
the mean activation `sae_act` is kept beside it); fluency = min(1, ppl_ref / ppl) with ppl
the NTP student's perplexity of the continuation and ppl_ref the unsteered continuations'
geometric mean on the same target's prompts of the same half (so fluency is 1 at or below
unsteered perplexity and 0.5 at twice it); harmonic = the harmonic mean of the two, 0 when
either is 0. No relevance score: nothing model-based says whether a continuation stays on
its opening's subject the way the oracle's characters do. distinct-2 is kept to show
repetition (which lowers perplexity and so is not penalised by fluency), and the share of
generated tokens among the target's top-10 promoted tokens (`top_token_share`: what the
latent writes, where the concept score reads what it reads) to tell an edit that acts on
the output side from one that does nothing.

Methods: the world bench's, where they apply without an oracle (`training.steer_bench`'s
grids and ops on the single target concept; DiffMean from `diffmean.latent_means`: mean
student residual where the target's SAE latent is active minus where it is not; SAE steering
of the teacher along the target's latent), prompting with the target's top-activating
context before or after the opening (family `prompt_context`), and the controls. The world's
prompting (topic sentences, the topic-switch line) needs the world's grammar: left out.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

import cocomix_lens.world.steer_topics  # noqa: F401  (its families are the ones left out)
from cocomix_lens.data.files import atomic_write_json, atomic_write_text
from cocomix_lens.steering.topic_methods import FAMILIES
from training.steer_bench import Bench, BenchConfig, _bar, choose_and_report
from training.steer_bench_methods import (
    TopicKit,
    candidates,
    extra_methods,
    sae_norm,
)
from training.steer_bench_report import results_json

WIKI_SCORES = {"concept": "sae_active", "sae_act": "sae_act", "promoted": "top_token_share",
               "ppl": "ppl_ntp", "distinct_2": "distinct_2"}
"""Score -> the registered scorer a wiki cell reads (fluency is derived from ppl)."""
HARMONIC_OF = ("concept", "fluency")
SCORING = "wiki-2"  # part of a wiki cell's key: bumped when WIKI_SCORES change
WORLD_ONLY = tuple(f.name for f in FAMILIES.values() if f.world)  # need the world's grammar
CONTEXTS = ("before", "after")  # prompt_context variants
COLUMNS = (("concept", False), ("fluency", False), ("sae_act", False), ("promoted", False),
           ("ppl", True), ("distinct_2", False))
HEADER = ("method", "harmonic mean", "concept (share of tokens active)",
          "fluency (ppl vs unsteered)", "SAE activation", "promoted tokens", "NTP perplexity",
          "distinct-2", "harmonic per target: min / median / max")


@dataclass
class WikiBenchConfig(BenchConfig):
    """The world bench's settings (`BenchConfig`; topics: target names) plus the targets'
    and prompts' rules (module docstring)."""

    concept_sets: tuple[str, ...] = ("single",)  # no ground truth: no concept sets
    n_prompts: int = 20  # what its committed results (benchmarks/results) were measured with
    n_targets: int = 12
    min_density: float = 0.002  # teacher-SAE activation density (catalogue act_density)
    max_density: float = 0.05
    prompt_tokens: int = 12  # tokens of each opening


@dataclass(frozen=True)
class Target:
    """One concept steered toward, and what the bench knows of it."""

    name: str  # "<concept>:<head keyword>", the bench's topic
    concept: int
    explanation: str
    detection: float
    act_density: float
    context: str  # its top teacher context (catalogue), the prompting cue
    context_doc: str


def targets(run: Any, cfg: WikiBenchConfig) -> list[Target]:
    """The candidate targets, in order, by the rule of the module docstring (`wiki_splits`
    keeps the first `n_targets` that have enough prompts)."""
    cat = run.catalogue
    c = cat.concepts
    ok = c[~c["dead"].astype(bool) & c["act_density"].between(cfg.min_density, cfg.max_density)
           & c["detection"].notna() & (c["keywords"].map(len) > 0)]
    ok = ok.sort_values("detection", ascending=False, kind="stable")
    top = cat.contexts[(cat.contexts["source"] == "teacher") & (cat.contexts["rank"] == 0)]
    top = top.set_index("concept")
    out, heads = [], set()
    for concept, row in ok.iterrows():
        head = str(row["keywords"][0])
        if head in heads or not (head.isalpha() and len(head) > 1) or concept not in top.index:
            continue
        heads.add(head)
        ctx = top.loc[concept]
        out.append(Target(f"{concept}:{head}", int(concept), str(row["explanation"]),
                          float(row["detection"]), float(row["act_density"]),
                          " ".join(f"{ctx['left']}{ctx['token']}{ctx['right']}".split()),
                          str(ctx["document"])))
    if not out:
        raise ValueError(f"no live concept of {run.path} has an act_density in "
                         f"[{cfg.min_density}, {cfg.max_density}] and a keyword explanation; "
                         "fix: widen min_density/max_density")
    return out


def wiki_openings(run: Any, n_tokens: int) -> list[Any]:
    """The first `n_tokens` tokens of every validation document longer than twice that,
    as `Opening`s (topic, characters and tense empty), those whose text encodes back to the
    same tokens."""
    from cocomix_lens.world.openings import Opening

    shards, tok = run.shards, run.tokenizer
    ids = shards.split("val")
    out = []
    for d in shards.documents("val"):
        if d["end"] - d["start"] <= 2 * n_tokens:
            continue
        head = [int(i) for i in ids[d["start"]:d["start"] + n_tokens]]
        text = shards.decode(head)
        if tok.encode(text).ids == head:
            out.append(Opening(text, "", (), "", str(d["id"])))
    return out


def wiki_splits(run: Any, pool: list[Any], tgts: list[Target], n: int, seed: int,
                limit: int | None = None) -> dict:
    """target name -> PromptSplit, for the first `limit` targets that have `n` openings of
    `pool` on which their latent is active at no token and that are not their context's
    document: a seeded draw of `n`, first half selection, second report."""
    import torch

    from cocomix_lens.concepts.extractor import ConceptExtractor
    from cocomix_lens.steering.evaluate import encode_prompts
    from cocomix_lens.world.openings import PromptSplit

    ex = ConceptExtractor(run.teacher, run.sae, method="activation")
    ids = torch.as_tensor([t.concept for t in tgts])
    with torch.no_grad():  # one length: one batch per 64 openings
        prompts = torch.stack(encode_prompts(run.tokenizer, [o.text for o in pool]))
        active = torch.cat([ex.scores(prompts[b:b + 64])[..., ids].amax(1) > 0
                            for b in range(0, len(prompts), 64)])  # [n_pool, n_targets]
    out = {}
    for j, t in enumerate(tgts):
        free = [o for i, o in enumerate(pool) if not active[i, j] and o.doc != t.context_doc]
        random.Random(f"{seed}:{t.name}").shuffle(free)
        if len(free) >= n:
            out[t.name] = PromptSplit(t.name, tuple(free[:n // 2]), tuple(free[n // 2:n]))
        if len(out) == limit:
            break
    if not out:
        raise ValueError(f"no target has {n} validation openings on which it is off; fix: "
                         "pass fewer prompts or a run with more validation documents")
    return out


class WikiBench(Bench):
    """The world bench's cell cache, workers and resume, with the wiki's targets, prompts
    and model-based scores (module docstring)."""

    def __init__(self, run: Any, cfg: WikiBenchConfig, out: Path, progress: Any = None):
        found = targets(run, cfg)
        if cfg.topics:
            found = [t for t in found if t.name in cfg.topics or str(t.concept) in cfg.topics]
        self._split = wiki_splits(run, wiki_openings(run, cfg.prompt_tokens), found,
                                  cfg.n_prompts, cfg.seed, cfg.quick_topics or cfg.n_targets)
        self.targets = {t.name: t for t in found if t.name in self._split}
        super().__init__(run, replace(cfg, topics=list(self.targets)), out, progress)

    def _splits(self) -> dict[str, Any]:
        return self._split

    def score_kwargs(self, method: Any, half: str) -> dict[str, Any]:  # ppl: fluency here
        return {"scores": WIKI_SCORES, "concept": self.targets[method.topic].concept}

    def _job(self, method: Any, half: str) -> tuple[str, tuple, int]:
        key, openings, n = super()._job(method, half)
        return hashlib.sha256(f"{key}:{SCORING}".encode()).hexdigest()[:20], openings, n

    def topic_means(self) -> dict[str, Any]:
        """target name -> TopicMeans (labels [name, "rest"]) at DiffMean's hooks and c_t."""
        from cocomix_lens.steering.diffmean import TopicMeans, latent_means

        path = self.out / "latent_means.json"
        hooks = [*self.hooks(), "concept.hook_vector"]
        stamp = {"run": self.fingerprint, "hooks": hooks, "tokens": self.cfg.diffmean_tokens,
                 "targets": list(self.targets)}
        if path.is_file():
            import json

            blob = json.loads(path.read_text())
            if blob.get("made_from") == stamp:
                return {k: TopicMeans.from_dict(v) for k, v in blob["means"].items()}
        made = latent_means(self.run, [t.concept for t in self.targets.values()], hooks,
                            n_tokens=self.cfg.diffmean_tokens)
        means = {t.name: replace(made[t.concept], labels=[t.name, "rest"])
                 for t in self.targets.values()}
        atomic_write_json(path, {"made_from": stamp,
                                 "means": {k: m.to_dict() for k, m in means.items()}})
        return means

    def cell(self, method: Any, half: str) -> Any:
        """The raw cell with fluency = min(1, ppl_ref / ppl) against the unsteered
        continuations of the same target and half, and the harmonic mean of concept and
        fluency."""
        from cocomix_lens.steering.topic_methods import TopicMethod

        raw = super().cell(method, half)
        base = super().cell(TopicMethod("unsteered", "", method.topic), half)
        ref = float(np.nanmean(base.values["ppl"]))  # mean log perplexity
        fluency = np.minimum(1.0, np.exp(ref - raw.values["ppl"]))
        return raw.with_values({**raw.values, "fluency": fluency}, HARMONIC_OF)


def kit(bench: WikiBench, target: Target, means: Any) -> TopicKit:
    """What the world bench's method builders need for one target."""
    from cocomix_lens.steering.topics import TopicConcepts

    concepts = TopicConcepts(target.name, (target.concept,), (target.detection,), "student",
                             f"the target concept {target.concept} ({target.explanation}; "
                             f"detection AUROC {target.detection:.2f})")
    return TopicKit(target.name, concepts, target.concept, means,
                    {"single": ((target.concept,), ())})


def wiki_methods(bench: WikiBench, k: TopicKit, chosen: dict, best_cocomix: str,
                 best_diffmean: str, tuned: dict) -> list:
    """Unsteered and the controls of the world bench, and prompting with the target's top
    context (the world's prompting needs its grammar: left out)."""
    from cocomix_lens.steering.topic_methods import TopicMethod

    target = bench.targets[k.topic]
    world = extra_methods(bench, k, chosen, best_cocomix, best_diffmean, tuned)
    return [m for m in world if m.family not in WORLD_ONLY] + [
        TopicMethod("prompt_context", v, k.topic, cue=target.context,
                    extra={"document": target.context_doc}) for v in CONTEXTS]


def run_wiki_bench(run: Any, out: Path, cfg: WikiBenchConfig | None = None,
                   show_progress: bool = False) -> dict[str, Any]:
    """Run (or resume) the wiki bench; writes OUT/results.json and OUT/results.md."""
    from cocomix_lens.steering.topic_methods import TopicMethod

    cfg = cfg or WikiBenchConfig()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    bench = WikiBench(run, cfg, out)
    means = bench.topic_means()
    kits = {t: kit(bench, bench.targets[t], means[t]) for t in bench.topics}
    sae_resid = sae_norm(run, [o for s in bench.splits.values() for o in s.selection])
    cands = {t: candidates(bench, kits[t], sae_resid) for t in bench.topics}
    select = [TopicMethod("unsteered", "", t) for t in bench.topics] + [
        m for c in cands.values() for ms in c.values() for m in ms]
    bench.progress = _bar(show_progress, len(select) + sum(len(c) + 6 for c in cands.values()))
    bench.fill([(m, "selection") for m in select])
    chosen, best_cocomix, best_diffmean, tuned, report = choose_and_report(
        bench, cands, kits, wiki_methods)
    results = results_json(bench, bench.cfg, kits, chosen, report, best_cocomix,
                           best_diffmean, tuned, time.perf_counter() - t0)
    results["mode"] = "wiki"
    results["targets"] = {t.name: t.__dict__ for t in bench.targets.values()}
    results["scores"] = {**WIKI_SCORES, "fluency": "min(1, ppl_ref / ppl_ntp)",
                         "harmonic": list(HARMONIC_OF)}
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "results.md", wiki_markdown(results))
    return results


def wiki_markdown(results: dict[str, Any]) -> str:
    """The results as a markdown table (`topic_eval.leaderboard` with the wiki's scores)."""
    from cocomix_lens.steering.topic_eval import leaderboard
    from cocomix_lens.tables import markdown_table
    from training.steer_bench_report import CELLS

    header, rows = leaderboard(results, HEADER, COLUMNS)
    cfg, sm, g = results["config"], results["sampling"], results["goals"]
    targets = "; ".join(f"{name} (AUROC {t['detection']:.2f}, density {t['act_density']:.3f})"
                        for name, t in results["targets"].items())
    return "\n".join([
        f"# Steering benchmark (wiki mode) on `{results['run']}`", "",
        f"{len(results['topics'])} target concepts ({targets}); per target "
        f"{cfg['n_prompts'] // 2} validation openings of {cfg['prompt_tokens']} tokens on "
        f"which it is not active (report half) x {cfg['report_samples']} continuations of "
        f"{sm['max_new_tokens']} tokens (temperature {sm['temperature']}, top-p "
        f"{sm['top_p']}); each method's strength chosen for all targets together on the other "
        f"{cfg['n_prompts'] - cfg['n_prompts'] // 2} openings (selection half, "
        f"{cfg['select_samples']} continuation each). concept = share of generated tokens "
        "where the target is among the teacher SAE's active latents; fluency = min(1, "
        "unsteered geometric-mean NTP perplexity / the continuation's); harmonic = their "
        "per-continuation harmonic mean, 0 if either is 0. 95 % bootstrap CIs over prompts. "
        f"This invocation: {results['wall_s']:.0f} s wall, {results['cells']['computed']} of "
        f"{results['cells']['total']} cells generated ({results['cells']['workers']} "
        f"worker(s); the rest read back from {CELLS}).", "",
        *markdown_table(header, rows).splitlines(), "",
        f"5x goal ({g['method']}: concept >= 5x random-concept control and >= 5x unsteered, "
        f"fluency within 0.10 of unsteered): {g['passed']} of {g['of']} targets.", ""])
