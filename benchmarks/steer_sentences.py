"""Does editing concepts only where a sentence starts move the topic without breaking grammar?

    python benchmarks/steer_sentences.py --run runs/demo --workers 2

The steer-bench's harness, halves, cells and goal (training/steer_bench.py), aimed at where
the edit acts: the default CoCoMix recipe (`vector` on the topic's concept set, every other
topic's set banned) at every generated position, against the same edit at the first `span`
slots of each sentence (positions "new_sentences" / "sentences", decided from the tokens as
they are generated: cocomix_lens/steering/sentences.py), and the transplant from the prompt
that works: the student's concept vector right after the corpus's topic-switch line toward
the topic (`world.steer_topics.switch_means`, over training openings) as a `vector` edit.
Each variant at one strength for every topic (best selection-half harmonic mean) and, for
the CoCoMix ones, at a grammar-bounded strength per topic ("@topic"), each with its
random-concept control; the 5x goal of the steer-bench per variant. Writes OUT/results.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cocomix_lens.world.steering_scorers  # noqa: F401  (registers the oracle scorers)
from cocomix_lens import Run
from cocomix_lens.data.files import atomic_write_json, atomic_write_text
from cocomix_lens.tables import markdown_table
from training.steer_bench import Bench, BenchConfig
from training.steer_bench_methods import (
    cocomix_method,
    diffmean_vector_method,
    random_control,
    topic_kit,
)
from training.steer_bench_report import choose_strengths, goals, tune_per_topic

POSITIONS = ("generated", "new_sentences:2", "new_sentences:4", "sentences:4")
GRID = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0)  # vector: activation rise in logit stds
SWITCH_POSITIONS = ("generated", "new_sentences:4")
SWITCH_GRID = (8.0, 16.0, 32.0, 64.0)  # x the switch-line difference of means (norm ~0.5-1)


def switch_means(bench: Bench):
    """`steer_topics.switch_means` of the run at c_t, cached in OUT/switch_means.json."""
    from cocomix_lens.steering.diffmean import TopicMeans
    from cocomix_lens.world.steer_topics import switch_means

    path = bench.out / "switch_means.json"
    stamp = {"run": bench.fingerprint, "topics": bench.topics}
    if path.is_file():
        blob = json.loads(path.read_text())
        if blob.get("made_from") == stamp:
            return TopicMeans.from_dict(blob)
    means = switch_means(bench.run, ["concept.hook_vector"], bench.topics)
    atomic_write_json(path, {"made_from": stamp, **means.to_dict()})
    return means


def candidates(bench: Bench, kit, switch) -> dict[str, list]:
    out = {}
    for pos in POSITIONS:
        ms = [cocomix_method(kit, "vector", "set+ban", pos, s, bench.run) for s in GRID]
        out[ms[0].key] = ms
    for pos in SWITCH_POSITIONS:
        ms = [diffmean_vector_method(kit, s, pos, "switch_vector", switch) for s in SWITCH_GRID]
        out[ms[0].key] = ms
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True)
    p.add_argument("--out", default="benchmarks/results/steer_sentences")
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()
    from cocomix_lens.steering.topic_eval import summarise
    from cocomix_lens.steering.topic_methods import TopicMethod

    t0 = time.perf_counter()
    run, out = Run.open(args.run), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = BenchConfig(workers=args.workers)
    bench = Bench(run, cfg, out)
    means, switch = bench.topic_means(), switch_means(bench)
    kits = {t: topic_kit(run, t, cfg, means) for t in bench.topics}
    cands = {t: candidates(bench, kits[t], switch) for t in bench.topics}
    bench.fill([(m, "selection") for c in cands.values() for ms in c.values() for m in ms]
               + [(TopicMethod("unsteered", "", t), "selection") for t in bench.topics])
    chosen = choose_strengths(bench, cands)
    cocomix = [k for k in cands[bench.topics[0]] if k.startswith("cocomix/")]
    tuned = tune_per_topic(bench, cands, tuple(cocomix))
    methods = []
    for t in bench.topics:
        mine = [c["method"] for c in chosen[t].values()] + list(tuned[t].values())
        methods += [TopicMethod("unsteered", "", t), *mine] + [
            random_control(bench, kits[t], m) for m in mine if m.family == "cocomix"]
    bench.fill([(m, "report") for m in methods])
    rows: dict[str, list] = {}
    for m in methods:
        rows.setdefault(m.key, []).append(bench.cell(m, "report"))
    rows = {k: {"summary": summarise(v, cfg.n_boot, cfg.seed)} for k, v in rows.items()}
    results = {
        "run": str(run.path), "run_fingerprint": bench.fingerprint,
        "wall_s": round(time.perf_counter() - t0, 1),
        "cells": {"computed": bench.computed, "total": len(bench.cells), "workers": args.workers},
        "selection": {t: {v: {"strength": c["method"].strength, "selection_hm": c["selection_hm"],
                              "grid": c["grid"]} for v, c in ch.items()}
                      for t, ch in chosen.items()},
        "per_topic_strength": {t: {v: m.strength for v, m in tv.items()}
                               for t, tv in tuned.items()},
        "goals": {k: goals(rows, k, bench.topics) for k in rows if k.startswith("cocomix/")},
        "rows": rows}
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "results.md", markdown(results))
    print(markdown(results))


def markdown(results: dict) -> str:
    def est(s: dict) -> str:
        return f"{s['mean']:.3f} [{s['lo']:.3f}, {s['hi']:.3f}]"

    rows = sorted(results["rows"].items(), key=lambda kv: -kv[1]["summary"]["harmonic"]["mean"])
    table = [[k, est(r["summary"]["harmonic"]), est(r["summary"]["concept"]),
              est(r["summary"]["fluency"]),
              (f"{results['goals'][k]['passed']} of {results['goals'][k]['of']}"
               if k in results["goals"] else "")] for k, r in rows]
    return "\n".join([
        f"# Steering at sentence starts on `{results['run']}`", "",
        "Report half of the steer-bench's openings (benchmarks/steer_sentences.py); one strength "
        "per variant for every topic, or per topic (@topic, grammar within 10 points of "
        "unsteered on the selection half). Goal: on-topic >= 5x the random-concept control and "
        ">= 5x unsteered, grammar within 10 points of unsteered, per topic. "
        f"This invocation: {results['wall_s']:.0f} s wall, {results['cells']['computed']} of "
        f"{results['cells']['total']} cells generated ({results['cells']['workers']} "
        "worker(s)).", "",
        markdown_table(("method", "harmonic mean", "concept", "fluency (grammar)",
                        "topics meeting the goal"), table), ""])


if __name__ == "__main__":
    main()
