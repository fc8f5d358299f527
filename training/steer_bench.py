"""`cocomix-lens steer-bench`: concept steering on a world run measured against the baselines
researchers use (AxBench's question, answered exactly by the world oracle).

For every topic of the world: openings of held-out documents on OTHER topics, split into a
selection half (each method's strength is chosen there, per topic, by the harmonic mean) and a
report half (every figure is measured there). Methods (`cocomix_lens.steering.topic_methods`):
CoCoMix concept edits (each op that can raise a concept, with the topic's best concept or its
concept set, at all positions or generated ones only), DiffMean on the student's residual
stream (the concept layer and its neighbours; the best chosen on the selection half),
DiffMean in concept-vector space, classic SAE steering of the teacher, prompting (topic
sentences before the opening, the corpus's topic-switch line after it) and controls
(unsteered, the chosen CoCoMix edit on random concepts, a random direction with the chosen
DiffMean vector's norm).

Every evaluated cell is appended to OUT/cells.jsonl as soon as it is scored, keyed by its
method, prompts and sampling, so an interrupted bench resumes where it stopped. OUT gets
results.json (every method resolved: spec, vectors, strengths, sampling) and results.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

import cocomix_lens.world.steering_scorers  # noqa: F401  (registers the oracle scorers)
from cocomix_lens.data.files import atomic_write_json, atomic_write_text, strict_json
from cocomix_lens.steering.ops import OPS as STEERING_OPS
from cocomix_lens.tables import markdown_table

log = logging.getLogger(__name__)

# Strength grids searched on the selection half, in each family's unit (methods.FAMILIES).
# Round 1 searched add (3, 6, 10), DiffMean and its concept-vector form (1, 2, 4, 8), SAE
# (0.3, 0.6, 0.9, 1.2); the best of every family fell between two of those points, so round 2
# (these grids) adds the points between them, for CoCoMix and the baselines alike.
GRIDS: dict[str, tuple[float | None, ...]] = {
    "add": (3.0, 4.5, 6.0, 8.0, 10.0),  # logit stds (the catalogue's)
    "scale": (-8.0, -4.0),  # factor on the logit (most logits are negative: flip them in)
    "force": (None,),
    "set": (5.0, 15.0),  # weight of each concept replacing the top-k
    "vector": (8.0, 20.0),  # activation rise in logit stds, along the compressor row
    "diffmean": (1.0, 1.5, 2.0, 3.0, 4.0, 8.0),  # x the difference of means
    "diffmean_vector": (1.0, 2.0, 3.0, 4.0, 6.0, 8.0),
    "sae": (0.3, 0.45, 0.6, 0.9, 1.2),  # x mean residual norm
}
OPS = tuple(op for op in STEERING_OPS if op != "ban")
"""Every op of the registry that can raise a concept (ban only lowers one)."""
CELLS = "cells.jsonl"  # every scored cell, appended as it is scored (the resume cache)
CONCEPT_SETS = ("single", "set", "set+ban")
POSITIONS = ("all", "generated")


@dataclass
class BenchConfig:
    """What one bench measures; every field is recorded in results.json."""

    n_prompts: int = 20  # openings per topic: half for selection, half for the report
    select_samples: int = 1  # continuations per opening while choosing strengths
    report_samples: int = 3  # continuations per opening in the reported figures
    max_new_tokens: int = 32
    temperature: float = 1.0
    top_p: float | None = 0.95
    seed: int = 0
    topics: list[str] | None = None  # default: every topic of the run's ground truth
    ops: tuple[str, ...] = OPS
    concept_sets: tuple[str, ...] = CONCEPT_SETS
    positions: tuple[str, ...] = POSITIONS
    diffmean_tokens: int = 65_536  # training tokens read for the topic means
    per_topic_strength: bool = False  # choose strengths per topic, not one for all topics
    max_grammar_drop: float = 0.10  # "@topic" rows: grammar within this of unsteered
    grids: dict[str, tuple[float | None, ...]] = field(default_factory=lambda: dict(GRIDS))
    n_boot: int = 2000
    workers: int = 1  # processes scoring cells (each loads the run's models once)

    @classmethod
    def quick(cls) -> BenchConfig:
        """Seconds-sized, for CI: 3 topics, 4 openings, one strength per method."""
        return cls(n_prompts=4, select_samples=1, report_samples=1, max_new_tokens=12,
                   topics=None, ops=("add", "vector"), positions=("all",),
                   diffmean_tokens=4096,
                   grids={k: v[:1] if k != "add" else (6.0,) for k, v in GRIDS.items()},
                   n_boot=200)


class Bench:
    """One bench over one run: what every method needs, built once; cells cached on disk."""

    def __init__(self, run: Any, cfg: BenchConfig, out: Path, progress: Any = None):
        from cocomix_lens.sampling import Sampling
        from cocomix_lens.steering.topics import world_topics

        self.run, self.cfg, self.out = run, cfg, out
        self.sampling = Sampling(seed=cfg.seed, max_new_tokens=cfg.max_new_tokens,
                                 temperature=cfg.temperature, top_p=cfg.top_p)
        self.topics = cfg.topics or world_topics(run)
        self.progress = progress
        self.cells_path = out / CELLS
        self.cells = _read_cells(self.cells_path)
        self.computed = 0  # cells generated by this invocation (the rest came from the cache)
        self.splits = self._splits()

    # ---- inputs -------------------------------------------------------------------------
    def _splits(self) -> dict[str, Any]:
        from cocomix_lens.world.openings import openings, prompt_split

        pool = openings(self.run.shards, "val")
        pool = _one_length(pool, self.run.tokenizer, self.topics, self.cfg.n_prompts)
        return {t: prompt_split(pool, t, self.cfg.n_prompts, self.cfg.seed)
                for t in self.topics}

    def hooks(self) -> list[str]:
        """DiffMean's candidate hooks: the residual the concept head reads (the concept
        layer), the stream one block before and the interleaved stream one block after."""
        i = self.run.student.cfg.insert_layer
        return [f"blocks.{i - 1}.hook_resid_pre", f"blocks.{i - 1}.hook_resid_post",
                f"blocks.{i}.hook_resid_post"]

    def topic_means(self):
        from cocomix_lens.steering.diffmean import TopicMeans, topic_means

        path = self.out / "topic_means.json"
        if path.is_file():
            return TopicMeans.from_dict(json.loads(path.read_text()))
        means = topic_means(self.run, [*self.hooks(), "concept.hook_vector"],
                            n_tokens=self.cfg.diffmean_tokens)
        atomic_write_json(path, means.to_dict())
        return means

    # ---- cells --------------------------------------------------------------------------
    def _job(self, method: Any, half: str) -> tuple[str, tuple, int]:
        openings = self.splits[method.topic].half(half)
        n = self.cfg.select_samples if half == "selection" else self.cfg.report_samples
        return _key(method, [o.text for o in openings], n, self.sampling), openings, n

    def fill(self, jobs: list[tuple[Any, str]]) -> None:
        """Score every (method, half) not yet in the cache, on `cfg.workers` processes (each
        opens the run once); each cell is appended to cells.jsonl as it arrives."""
        todo = {}
        for method, half in jobs:
            key, openings, n = self._job(method, half)
            if key not in self.cells:
                todo[key] = (half, (method, openings, n))
        if self.progress is not None:
            self.progress.update(len(jobs) - len(todo))
        if not todo:
            return
        if self.cfg.workers > 1 and len(todo) > 1:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            with ctx.Pool(self.cfg.workers, _worker_init,
                          (str(self.run.path), self.run.device, self.sampling)) as pool:
                for key, blob in pool.imap_unordered(_worker_cell, list(todo.items())):
                    self._store(key, todo[key][0], blob)
        else:
            for key, (half, args) in todo.items():
                self._store(key, half, _evaluate(self.run, self.sampling, args))

    def _store(self, key: str, half: str, blob: dict[str, Any]) -> None:
        self.computed += 1
        self.cells[key] = blob
        with self.cells_path.open("a", encoding="utf-8") as f:
            f.write(strict_json({"key": key, "half": half, **blob}) + "\n")
        if self.progress is not None:
            self.progress.update(1)

    def cell(self, method: Any, half: str) -> Any:
        """The scores of `method` on its topic's `half` (computed by `fill` if missing)."""
        from cocomix_lens.steering.topic_eval import MethodScores

        key, _, _ = self._job(method, half)
        if key not in self.cells:
            self.fill([(method, half)])
        return MethodScores.from_dict(self.cells[key])


def _evaluate(run: Any, sampling: Any, args: tuple) -> dict[str, Any]:
    from cocomix_lens.steering.topic_eval import evaluate_method

    method, openings, n = args
    return evaluate_method(run, method, openings, sampling, n).to_dict()


_WORKER: dict[str, Any] = {}


def _worker_init(run_dir: str, device: str, sampling: Any) -> None:
    import torch

    from cocomix_lens import Run

    torch.set_num_threads(1)
    _WORKER.update(run=Run.open(run_dir, device=device), sampling=sampling)


def _worker_cell(item: tuple[str, tuple[str, tuple]]) -> tuple[str, dict[str, Any]]:
    key, (_, args) = item
    return key, _evaluate(_WORKER["run"], _WORKER["sampling"], args)


def _key(method: Any, prompts: list[str], n: int, sampling: Any) -> str:
    blob = json.dumps([method.to_dict(), prompts, n, asdict(sampling)], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _read_cells(path: Path) -> dict[str, dict[str, Any]]:
    """The cells of an earlier (maybe interrupted) bench; a torn last line is cut off the file
    so new cells append on a line of their own."""
    cells, good = {}, []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                blob = json.loads(line)
            except json.JSONDecodeError:  # the torn last line of an interrupted bench
                continue
            good.append(line)
            cells[blob.pop("key")] = blob
        atomic_write_text(path, "".join(g + "\n" for g in good))
    return cells


def _one_length(pool: list, tokenizer: Any, topics: list[str], n: int) -> list:
    """The openings of the fewest token lengths (most common first) that still give every
    topic `n` openings of other topics: prompts of one length generate as one batch."""
    lengths: dict[int, list] = {}
    for o in pool:
        lengths.setdefault(len(tokenizer.encode(o.text).ids), []).append(o)
    chosen: list = []
    for _, group in sorted(lengths.items(), key=lambda kv: -len(kv[1])):
        chosen += group
        if all(sum(o.topic != t for o in chosen) >= n for t in topics):
            return chosen
    return chosen


# ---- methods ----------------------------------------------------------------------------------
@dataclass
class TopicKit:
    """What the methods of one topic are built from."""

    topic: str
    concepts: Any  # TopicConcepts (student)
    sae_concept: int
    means: Any  # TopicMeans
    ids: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]  # concept set -> (raise, ban)


def topic_kit(run: Any, topic: str, cfg: BenchConfig, means: Any) -> TopicKit:
    from cocomix_lens.steering.topics import topic_concepts
    from cocomix_lens.steering.toward import TopicRecipe

    ids = {which: TopicRecipe("add", which, "all", 0.0, "").ids(run, topic)
           for which in cfg.concept_sets}
    return TopicKit(topic, topic_concepts(run, topic),
                    topic_concepts(run, topic, source="sae").best, means, ids)


def cocomix_method(kit: TopicKit, op: str, which: str, positions: str,
                   strength: float | None, run: Any, concepts: tuple[int, ...] | None = None):
    """A CoCoMix edit (`toward.TopicRecipe`) of the topic's concepts (`which`: a
    `toward.CONCEPT_SETS` entry), or of `concepts` (the random-concept control)."""
    from cocomix_lens.steering.topic_methods import TopicMethod
    from cocomix_lens.steering.toward import TopicRecipe

    recipe = TopicRecipe(op, which, positions, strength, source="steer-bench candidate")
    ids, ban = kit.ids[which]
    if concepts is not None:
        ids, ban = concepts, ()
    return TopicMethod("cocomix", f"{op}/{which}/{positions}", kit.topic, strength,
                  recipe.spec(run, ids, ban),
                  extra={"concepts": list(ids), "banned": list(ban), "how": kit.concepts.how})


def diffmean_method(kit: TopicKit, hook: str, strength: float):
    from cocomix_lens.steering.topic_methods import TopicMethod

    v = strength * kit.means.diffmean(hook, kit.topic)
    return TopicMethod("diffmean", hook, kit.topic, strength, hook=hook,
                  vector=tuple(float(x) for x in v))


def diffmean_vector_method(kit: TopicKit, strength: float, positions: str = "all"):
    from cocomix_lens.steering.spec import Edit, SteeringSpec
    from cocomix_lens.steering.topic_methods import TopicMethod

    v = kit.means.diffmean("concept.hook_vector", kit.topic)
    spec = SteeringSpec((Edit("vector", None, strength, positions,
                              vector=tuple(float(x) for x in v)),))
    return TopicMethod("diffmean_vector", positions, kit.topic, strength, spec)


def sae_method(kit: TopicKit, run: Any, strength: float, norm: float):
    from cocomix_lens.concepts.extractor import decoder_directions
    from cocomix_lens.steering.topic_methods import TopicMethod

    unit = decoder_directions(run.sae)[kit.sae_concept].float()
    v = strength * norm * unit / unit.norm()
    return TopicMethod("sae", "best latent", kit.topic, strength,
                  hook=run.sae.cfg.metadata.hook_name, vector=tuple(float(x) for x in v),
                  extra={"concept": kit.sae_concept, "resid_norm": norm})


def sae_norm(run: Any, openings: list) -> float:
    """Mean residual norm at the SAE's hook over the openings, each prompt on its own."""
    import torch

    from cocomix_lens.steering.evaluate import encode_prompts

    hook = run.sae.cfg.metadata.hook_name
    norms = []
    with torch.no_grad():
        for ids in encode_prompts(run.tokenizer, [o.text for o in openings]):
            _, cache = run.teacher.run_with_cache(ids[None], names_filter=hook)
            norms.append(float(cache[hook].norm(dim=-1).mean()))
    return float(np.mean(norms))


# ---- the bench ------------------------------------------------------------------------------
def candidates(bench: Bench, kit: TopicKit, sae_resid: float) -> dict[str, list]:
    """variant key -> its methods over the strength grid (selection-half candidates)."""
    cfg, run, out = bench.cfg, bench.run, {}
    for op in cfg.ops:
        for which in cfg.concept_sets:
            if which == "set" and len(kit.concepts.concepts) < 2:
                continue  # the set is the single concept
            for pos in cfg.positions:
                ms = [cocomix_method(kit, op, which, pos, s, run) for s in cfg.grids[op]]
                out[ms[0].key] = ms
    for hook in bench.hooks():
        ms = [diffmean_method(kit, hook, s) for s in cfg.grids["diffmean"]]
        out[ms[0].key] = ms
    ms = [diffmean_vector_method(kit, s) for s in cfg.grids["diffmean_vector"]]
    out[ms[0].key] = ms
    ms = [sae_method(kit, run, s, sae_resid) for s in cfg.grids["sae"]]
    out[ms[0].key] = ms
    return out


def run_bench(run: Any, out: Path, cfg: BenchConfig | None = None,
              show_progress: bool = False) -> dict[str, Any]:
    """Run (or resume) the bench; writes OUT/results.json and OUT/results.md; returns the
    results."""
    cfg = cfg or BenchConfig()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    bench = Bench(run, cfg, out)
    means = bench.topic_means()
    kits = {t: topic_kit(run, t, cfg, means) for t in bench.topics}
    sae_resid = sae_norm(run, [o for s in bench.splits.values() for o in s.selection])
    cands = {t: candidates(bench, kits[t], sae_resid) for t in bench.topics}
    n_select = sum(len(ms) for c in cands.values() for ms in c.values())
    n_report = sum(len(c) + 5 for c in cands.values())
    bench.progress = _bar(show_progress, n_select + n_report)
    bench.fill([(m, "selection") for c in cands.values() for ms in c.values() for m in ms])
    chosen = choose_strengths(bench, cands)
    best_cocomix = _best_variant(chosen, "cocomix")
    best_diffmean = _best_variant(chosen, "diffmean/")
    tuned = tune_per_topic(bench, cands, (best_cocomix, best_diffmean))
    methods = [m for t in bench.topics for m in (
        [c["method"] for c in chosen[t].values()] + list(tuned[t].values())
        + _extra_methods(bench, kits[t], chosen[t], best_cocomix, best_diffmean, tuned[t]))]
    bench.fill([(m, "report") for m in methods])
    report: dict[str, list] = {}
    for m in methods:
        report.setdefault(m.key, []).append(bench.cell(m, "report"))
    if bench.progress is not None:
        bench.progress.close()
    results = _results(bench, cfg, kits, chosen, report, best_cocomix, best_diffmean,
                       time.perf_counter() - t0)
    results["per_topic_strength"] = {t: {v: m.strength for v, m in tv.items()}
                                     for t, tv in tuned.items()}
    results["cells"] = {"computed": bench.computed, "total": len(bench.cells),
                        "workers": cfg.workers}
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "results.md", results_markdown(results))
    return results


def tune_per_topic(bench: Bench, cands: dict[str, dict[str, list]],
                   variants: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """topic -> variant -> the variant at its own strength for this topic, renamed
    "<variant>@topic": the grid point with the best selection-half harmonic mean among those
    whose grammatical share stays within `max_grammar_drop` of the unsteered run's on the
    same openings (the smallest strength when none does)."""
    from cocomix_lens.steering.topic_methods import TopicMethod

    out: dict[str, dict[str, Any]] = {t: {} for t in cands}
    for t, variants_of in cands.items():
        base = bench.cell(TopicMethod("unsteered", "", t), "selection")
        floor = float(np.nanmean(base.values["fluency"])) - bench.cfg.max_grammar_drop
        for v in variants:
            ms = variants_of.get(v)
            if not ms:
                continue
            cells = [bench.cell(m, "selection") for m in ms]
            ok = [i for i, c in enumerate(cells) if np.nanmean(c.values["fluency"]) >= floor]
            i = max(ok, key=lambda j: float(np.mean(cells[j].harmonic))) if ok else 0
            out[t][v] = replace(ms[i], variant=ms[i].variant + "@topic")
    return out


def choose_strengths(bench: Bench, cands: dict[str, dict[str, list]]) -> dict[str, Any]:
    """topic -> variant -> {"method", "selection_hm", "grid"}: each variant at the strength
    with the best selection-half harmonic mean, averaged over topics (one strength for every
    topic: the setting a user gets by default) or per topic (`per_topic_strength`); ties go
    to the first (smallest) grid value."""
    grid_hm: dict[str, dict[str, list[float]]] = {}
    for t, variants in cands.items():
        for variant, ms in variants.items():
            grid_hm.setdefault(variant, {})[t] = [
                float(np.mean(bench.cell(m, "selection").harmonic)) for m in ms]
    chosen: dict[str, Any] = {t: {} for t in cands}
    for variant, per_topic in grid_hm.items():
        pooled = np.mean(list(per_topic.values()), axis=0)
        for t, hms in per_topic.items():
            i = int(np.argmax(hms if bench.cfg.per_topic_strength else pooled))
            ms = cands[t][variant]
            chosen[t][variant] = {"method": ms[i], "selection_hm": hms[i],
                                  "grid": [[m.strength, h] for m, h in zip(ms, hms)]}
    return chosen


def _bar(show: bool, total: int) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="steer-bench cells", dynamic_ncols=True)


def _best_variant(chosen: dict[str, dict[str, Any]], prefix: str) -> str:
    """The variant of a family with the best selection-half harmonic mean over topics."""
    variants = {v for c in chosen.values() for v in c if v.startswith(prefix)}
    return max(sorted(variants), key=lambda v: np.mean(
        [chosen[t][v]["selection_hm"] for t in chosen if v in chosen[t]]))


def _extra_methods(bench: Bench, kit: TopicKit, chosen: dict[str, Any], best_cocomix: str,
                   best_diffmean: str, tuned: dict[str, Any]) -> list:
    """Prompting and the controls, for one topic (a random-concept control for the best
    CoCoMix variant at its global and at its per-topic strength)."""
    from cocomix_lens.steering.diffmean import random_direction
    from cocomix_lens.steering.evaluate import live_concepts
    from cocomix_lens.steering.topic_methods import TopicMethod

    out = [TopicMethod("unsteered", "", kit.topic), TopicMethod("prompt_cue", "", kit.topic),
           TopicMethod("prompt_switch", "", kit.topic)]
    for cm in ([chosen[best_cocomix]["method"]] if best_cocomix in chosen else []) + [
            m for v, m in tuned.items() if v == best_cocomix]:
        op, which, pos = cm.variant.split("@")[0].split("/")
        live = np.setdiff1d(live_concepts(bench.run), kit.concepts.concepts)
        rng = np.random.default_rng([bench.cfg.seed, sum(map(ord, kit.topic))])
        ids = tuple(int(c) for c in rng.choice(live, len(cm.extra["concepts"]), replace=False))
        rc = cocomix_method(kit, op, which, pos, cm.strength, bench.run, concepts=ids)
        out.append(replace(rc, family="random_concept", variant=cm.variant))
    dm = chosen[best_diffmean]["method"]
    seed = bench.cfg.seed * 1009 + sum(map(ord, kit.topic))
    out.append(TopicMethod("random_direction", dm.variant, kit.topic, dm.strength, hook=dm.hook,
                      vector=tuple(float(x) for x in random_direction(
                          np.asarray(dm.vector), seed))))
    return out


def _results(bench: Bench, cfg: BenchConfig, kits: dict, chosen: dict, report: dict,
             best_cocomix: str, best_diffmean: str, wall: float) -> dict[str, Any]:
    from cocomix_lens.steering.topic_eval import summarise

    rows = {}
    for key, cells in report.items():
        rows[key] = {"summary": summarise(cells, cfg.n_boot, cfg.seed),
                     "cells": [c.to_dict() for c in cells]}
    return {
        "run": str(bench.run.path), "config": asdict(cfg),
        "sampling": asdict(bench.sampling), "wall_s": round(wall, 1),
        "topics": bench.topics,
        "prompts": {t: {"selection": [o.__dict__ for o in s.selection],
                        "report": [o.__dict__ for o in s.report]}
                    for t, s in bench.splits.items()},
        "topic_concepts": {t: k.concepts.to_dict() for t, k in kits.items()},
        "sae_concepts": {t: k.sae_concept for t, k in kits.items()},
        "selection": {t: {v: {"strength": c["method"].strength,
                              "selection_hm": c["selection_hm"], "grid": c["grid"]}
                          for v, c in ch.items()} for t, ch in chosen.items()},
        "best": {"cocomix": best_cocomix, "diffmean": best_diffmean},
        "rows": rows,
        "goals": goals(rows, best_cocomix, bench.topics),
        "goals_per_topic_strength": goals(rows, best_cocomix + "@topic", bench.topics),
    }


def goals(rows: dict[str, Any], best_cocomix: str, topics: list[str]) -> dict[str, Any]:
    """Per topic: CoCoMix's best on-topic share vs 5x the random-concept control and 5x
    unsteered, grammar within 10 points of unsteered."""
    def per_topic(key: str, score: str) -> dict[str, float]:
        return rows[key]["summary"][score]["per_topic"] if key in rows else {}

    best = per_topic(best_cocomix, "concept")
    ctl, base = per_topic("random_concept/" + best_cocomix.split("/", 1)[1], "concept"), \
        per_topic("unsteered", "concept")
    g_best, g_base = per_topic(best_cocomix, "fluency"), per_topic("unsteered", "fluency")
    out = {}
    for t in topics:
        if t not in best:
            continue
        ok = (best[t] >= 5 * ctl.get(t, 0.0) and best[t] >= 5 * base.get(t, 0.0)
              and best[t] > 0 and g_best[t] >= g_base.get(t, 0.0) - 0.10)
        out[t] = {"on_topic": best[t], "control": ctl.get(t), "unsteered": base.get(t),
                  "grammar": g_best[t], "grammar_unsteered": g_base.get(t), "pass": bool(ok)}
    return {"method": best_cocomix, "per_topic": out,
            "passed": sum(v["pass"] for v in out.values()), "of": len(out)}


# ---- report -------------------------------------------------------------------------------
def results_markdown(results: dict[str, Any]) -> str:
    """The results as a markdown table (`topic_eval.leaderboard`), best harmonic mean first."""
    from cocomix_lens.steering.topic_eval import leaderboard

    header, rows = leaderboard(results)
    lines = markdown_table(header, rows).splitlines()
    g, gt = results["goals"], results["goals_per_topic_strength"]
    cfg, sm = results["config"], results["sampling"]
    return "\n".join([
        f"# Steering benchmark on `{results['run']}`", "",
        f"{len(results['topics'])} topics; per topic {cfg['n_prompts'] // 2} held-out openings "
        f"of other topics (report half) x {cfg['report_samples']} continuations of "
        f"{sm['max_new_tokens']} tokens (temperature {sm['temperature']}, top-p "
        f"{sm['top_p']}); each method's strength chosen "
        f"{'per topic' if cfg['per_topic_strength'] else 'for all topics together'} on the "
        f"other {cfg['n_prompts'] - cfg['n_prompts'] // 2} openings per topic (selection "
        f"half, {cfg['select_samples']} continuation each). Scores are shares of the "
        "continuation's sentences (world oracle); harmonic = per-continuation harmonic mean of "
        "concept, fluency and relevance, 0 if any is 0 (AxBench). 95 % bootstrap CIs over "
        f"prompts. This invocation: {results['wall_s']:.0f} s wall, "
        f"{results['cells']['computed']} of {results['cells']['total']} cells generated "
        f"({results['cells']['workers']} worker(s); the rest read back from {CELLS}).", "",
        *lines, "",
        f"5x goal ({g['method']}: on-topic >= 5x random-concept control and >= 5x unsteered, "
        f"grammar within 10 points of unsteered): {g['passed']} of {g['of']} topics; with its "
        f"strength chosen per topic ({gt['method']}, grammar-bounded on the selection half): "
        f"{gt['passed']} of {gt['of']}.", ""])
