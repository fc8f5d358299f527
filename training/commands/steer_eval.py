"""`cocomix-lens steer-eval`: does a steering edit do what it says? A table with CIs.

    cocomix-lens steer-eval --run runs/demo --spec spec.json
    cocomix-lens steer-eval --run runs/demo --spec spec.json --samples 128 --json > eval.json
    cocomix-lens steer-eval --run runs/demo --spec spec.json --sweep 2 4 8 16

Generates with the spec, then scores the text with steering off beside the unsteered run and a
random-concept control of the same strength; the teacher steered along the same SAE latent
is compared the same way (`--sae-strength`, 0 to skip).
"""

from __future__ import annotations

import argparse
import json

HELP = "measure a steering spec: steered vs unsteered vs random control, with bootstrap CIs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run directory (`cocomix-lens pipeline`)")
    p.add_argument("--spec", required=True,
                   help="steering spec JSON (SteeringSpec.save); its first edit's concept is "
                        "the one scored")
    p.add_argument("--prompt", action="append",
                   help="prompt text (repeat for several; default: openings of val documents)")
    p.add_argument("--samples", type=int, default=32, help="generations per condition")
    p.add_argument("--max-new-tokens", type=int, default=48, help="tokens per generation")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling, control and bootstrap")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass")
    p.add_argument("--sae-strength", type=float, default=1.0,
                   help="teacher SAE steering, in units of the mean residual norm (0: skip)")
    p.add_argument("--control", type=int, help="control concept (default: random live one)")
    p.add_argument("--scorers", nargs="+", help="metrics to compute (default: all that apply)")
    p.add_argument("--topic", help="world runs: the topic the oracle checks (default: from "
                                   "the concept's top output tokens)")
    p.add_argument("--character", help="world runs: the character the oracle checks")
    p.add_argument("--sweep", type=float, nargs="+", metavar="STRENGTH",
                   help="instead: the spec's first operation on its concept at each strength")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--device", default="cpu", help="torch device")


def run(args: argparse.Namespace) -> int:
    from cocomix_lens import Run
    from cocomix_lens.progress import progress_bar
    from cocomix_lens.steering import SteeringSpec
    from cocomix_lens.steering.evaluate import as_steerer, evaluate_steering, sweep

    run_ = Run.open(args.run, device=args.device)
    spec = SteeringSpec.load(args.spec)
    steerer = as_steerer(run_, spec)
    extras = {k: v for k, v in (("topic", args.topic), ("character", args.character)) if v}
    common = dict(prompts=args.prompt, n_samples=args.samples, seed=args.seed,
                  max_new_tokens=args.max_new_tokens, control=args.control,
                  scorers=args.scorers, temperature=args.temperature, top_p=args.top_p,
                  progress=progress_bar, extras=extras)
    if args.sweep:
        result = sweep(run_, steerer.concept, spec.edits[0].op, args.sweep, **common)
    else:
        result = evaluate_steering(run_, steerer, sae_strength=args.sae_strength or None,
                                   **common)
    print(json.dumps(result.to_dict(), indent=1) if args.json else result.table())
    return 0
