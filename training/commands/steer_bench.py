"""`cocomix-lens steer-bench`: concept steering against DiffMean, SAE steering, prompting and
controls on every topic of a world run (training/steer_bench.py), or, on a run without the
world oracle, toward a fixed set of its concepts scored by models (training/steer_bench_wiki.py).

    cocomix-lens steer-bench --run runs/demo        # -> runs/demo/steering/bench (the app's)
    cocomix-lens steer-bench --run runs/demo --out /tmp/bench --quick   # seconds, for CI
    cocomix-lens steer-bench --run runs/wiki        # wiki mode -> runs/wiki/steering/bench_wiki

Resumable: cells already scored in OUT/cells.jsonl are read back, not generated again.
"""

from __future__ import annotations

import argparse

from training.flags import SEED, number

HELP = "benchmark steering toward each world topic: CoCoMix edits vs DiffMean, SAE, prompting"
MODES = ("auto", "world", "wiki")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="world run directory (`cocomix-lens pipeline "
                                                "--preset world`), or any run in wiki mode")
    p.add_argument("--mode", default="auto", choices=MODES,
                   help="world: topics scored by the world oracle; wiki: a fixed set of the "
                        "run's concepts scored by models (SAE activation, NTP perplexity); "
                        "auto: world on a world run, else wiki")
    p.add_argument("--out", help="where results.json, results.md and the cell cache go "
                                 "(default: RUN/steering/bench, where the app finds them)")
    p.add_argument("--quick", action="store_true",
                   help="a seconds-sized bench (few prompts, one strength per method) for CI")
    p.add_argument("--topics", nargs="+", help="topics to bench (default: every topic); wiki "
                                               "mode: target concept ids")
    p.add_argument("--seed", type=SEED, default=0, help="seed of prompts, sampling, controls")
    p.add_argument("--prompts", type=number(2, 10_000), default=None,
                   help="openings per topic, half to choose strengths on and half to report "
                        "on (default: 40 on a world run, 20 in wiki mode)")
    p.add_argument("--workers", type=number(1, 256), default=1,
                   help="processes scoring cells in parallel (each loads the models once)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--device", default="cpu", help="torch device")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from cocomix_lens import Run
    from cocomix_lens.rundir import LAYOUT
    from cocomix_lens.world.steering_scorers import is_world_run
    from training.steer_bench import BenchConfig, run_bench
    from training.steer_bench_report import results_markdown
    from training.steer_bench_wiki import WikiBenchConfig, run_wiki_bench, wiki_markdown

    run_ = Run.open(args.run, device=args.device)
    world = is_world_run(run_)
    if args.mode == "wiki" or (args.mode == "auto" and not world):
        cfg = WikiBenchConfig.quick() if args.quick else WikiBenchConfig()
        cfg = replace(cfg, seed=args.seed, topics=args.topics, workers=args.workers,
                      n_prompts=args.prompts or cfg.n_prompts)
        out = Path(args.out) if args.out else run_.path / LAYOUT.pipeline.steer_bench_wiki
        print(wiki_markdown(run_wiki_bench(run_, out, cfg, not args.no_progress)))
        return 0
    if not world:
        raise ValueError(f"{args.run} is not a world run: the bench scores with the world "
                         "oracle; fix: pass a run of `cocomix-lens pipeline --preset world`, "
                         "or --mode wiki")
    cfg = BenchConfig.quick() if args.quick else BenchConfig()
    cfg = replace(cfg, seed=args.seed, topics=args.topics or cfg.topics, workers=args.workers,
                  n_prompts=args.prompts or cfg.n_prompts)
    out = Path(args.out) if args.out else run_.path / LAYOUT.pipeline.steer_bench
    results = run_bench(run_, out, cfg, show_progress=not args.no_progress)
    print(results_markdown(results))
    return 0
