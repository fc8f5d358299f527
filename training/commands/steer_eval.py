"""`cocomix-lens steer-eval`: does a steering edit do what it says? A table with CIs.

    cocomix-lens steer-eval --run runs/demo --spec spec.json
    cocomix-lens steer-eval --run runs/demo --spec spec.json --n-samples 128 --json > eval.json
    cocomix-lens steer-eval --run runs/demo --spec spec.json --sweep 2 4 8 16
    cocomix-lens steer-eval --run runs/demo --densest 10 --out runs/demo/steering

Generates with the spec, then scores the continuations with steering off beside the
unsteered run and a random-concept control of the same strength; the teacher steered along
the same SAE latent is compared the same way (`--sae-strength`, 0 to skip). The table gives
each metric with CIs, the on-target figure per prompt (min / median / max) and example
continuations. `--densest N` needs no spec: it screens the N concepts the student predicts
most often, sweeps the densest one that steers and evaluates it
(`training.steering_screen.steer_densest`); `--out` keeps its JSON and markdown.
Sampling flags are the fields of `cocomix_lens.sampling.Sampling`.
"""

from __future__ import annotations

import argparse

from training.flags import SAMPLES, number

HELP = "measure a steering spec: steered vs unsteered vs random control, with bootstrap CIs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cocomix_lens.sampling import Sampling
    from training.flags import add_flags

    p.add_argument("--run", required=True, help="run directory (`cocomix-lens pipeline`)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--spec",
                      help="steering spec JSON (SteeringSpec.save); its first edit's concept "
                           "is the one scored")
    what.add_argument("--densest", type=number(1, 1 << 20), metavar="N",
                      help="instead of a spec: screen the N densest concepts with an add edit, "
                           "then sweep and evaluate the densest that steers")
    p.add_argument("--prompt", action="append",
                   help="prompt text (repeat for several; default: openings of val documents)")
    p.add_argument("--n-samples", "--samples", dest="n_samples", type=SAMPLES,
                   help="generations per condition (default 32; --densest: 128, final only)")
    add_flags(p, Sampling)
    p.add_argument("--sae-strength", type=number(0, 1000, integer=False), default=1.0,
                   help="teacher SAE steering, in units of the mean residual norm (0: skip)")
    p.add_argument("--control", type=number(0, 1 << 24),
                   help="control concept (default: random live one)")
    p.add_argument("--scorers", nargs="+", help="metrics to compute (default: all that apply)")
    p.add_argument("--topic", help="world runs: the topic the oracle checks (default: from "
                                   "the concept's top output tokens)")
    p.add_argument("--character", help="world runs: the character the oracle checks")
    p.add_argument("--sweep", type=number(-1000, 1000, integer=False), nargs="+",
                   metavar="STRENGTH",
                   help="instead: the spec's first operation on its concept at each strength")
    p.add_argument("--screen-strength", type=number(0, 1000, integer=False, lo_open=True),
                   default=6.0,
                   help="--densest: the screen's add edit, in logit stds")
    p.add_argument("--screen-samples", type=SAMPLES, default=48,
                   help="--densest: generations per condition in the screen")
    p.add_argument("--sweep-samples", type=SAMPLES, default=64,
                   help="--densest: generations per condition in the sweeps")
    p.add_argument("--truth", metavar="VARIABLE",
                   help="--densest: screen only concepts whose ground-truth match is a value "
                        "of VARIABLE (world runs, e.g. topic)")
    p.add_argument("--out", help="--densest: write steering.json and steering.md here")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--device", default="cpu", help="torch device")


def run(args: argparse.Namespace) -> int:
    import cocomix_lens.world.steering_scorers  # noqa: F401  (registers the oracle scorers)
    from cocomix_lens import Run
    from cocomix_lens.data.files import strict_json
    from cocomix_lens.progress import progress_bar
    from cocomix_lens.sampling import Sampling
    from cocomix_lens.steering import SteeringSpec, validate_spec
    from cocomix_lens.steering.evaluate import (
        Evaluation,
        as_method,
        evaluate_steering,
        sweep,
    )
    from cocomix_lens.world.steering_scorers import is_world_run
    from training.flags import from_flags

    run_ = Run.open(args.run, device=args.device)
    sampling = from_flags(Sampling, args)
    if args.densest is not None:
        return _densest(run_, args, sampling)
    if args.out:
        raise ValueError("--out goes with --densest; fix: drop --out, or use --json > FILE")
    if args.truth:
        raise ValueError("--truth goes with --densest (it filters the screened concepts); "
                         "fix: drop --truth, or screen with --densest N")
    spec = validate_spec(SteeringSpec.load(args.spec), run_.student.cfg)
    method = as_method(run_, spec)
    extras = {k: v for k, v in (("topic", args.topic), ("character", args.character)) if v}
    if extras and not is_world_run(run_):
        raise ValueError(f"--{next(iter(extras))} names a target of the world oracle, but "
                         f"{args.run} is not a world run; fix: drop it")
    evaluation = Evaluation(n_samples=args.n_samples or 32, control=args.control,
                            scorers=tuple(args.scorers) if args.scorers else None,
                            extras=extras)
    if args.sweep:
        result = sweep(run_, method.concept, spec.edits[0].op, args.sweep, args.prompt,
                       sampling, evaluation, progress=progress_bar)
    else:
        result = evaluate_steering(run_, method, args.prompt, sampling, evaluation,
                                   sae_strength=args.sae_strength or None,
                                   progress=progress_bar)
    print(strict_json(result.to_dict(), indent=1) if args.json else result.table())
    return 0


def _densest(run_, args: argparse.Namespace, sampling) -> int:
    from dataclasses import replace
    from pathlib import Path

    from cocomix_lens.data.files import (
        atomic_write_json,
        atomic_write_text,
        remove_temporaries,
        strict_json,
    )
    from cocomix_lens.progress import progress_bar
    from training.steering_screen import ScreenSettings, steer_densest

    settings = ScreenSettings(n=args.densest, truth=args.truth, strength=args.screen_strength,
                              screen_samples=args.screen_samples,
                              sweep_samples=args.sweep_samples,
                              samples=args.n_samples or 128)
    if args.sweep is not None:
        settings = replace(settings, add=tuple(args.sweep))
    res = steer_densest(run_, settings, sampling, args.prompt, progress=progress_bar)
    doc, md = res.to_dict(), f"# Steering a densely predicted concept: `{args.run}`\n\n" \
        + res.markdown()
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        remove_temporaries(out)  # of killed runs (dead writers' only)
        # the table first, the JSON (what Run.steering reads) last: a kill between the two
        # never leaves a new steering.json beside an old or missing steering.md
        atomic_write_text(out / "steering.md", md)
        atomic_write_json(out / "steering.json", doc)
    print(strict_json(doc, indent=1) if args.json else md)
    return 0
