"""`cocomix-lens generate`: text from a run's model, optionally steered by a spec file.

    cocomix-lens generate --run runs/demo --prompt "The history of"
    cocomix-lens generate --run runs/demo --prompt "The history of" --steer spec.json --seed 0

`add` edits without a std use the concept's logit std from the run's catalogue when it has one
(`cocomix-lens catalog --run DIR`), else the std measured on the prompt.
"""

from __future__ import annotations

import argparse

from training.flags import NEW_TOKENS, SEED, TEMPERATURE, TOP_P

HELP = "generate text from a run's model (optionally steered by a SteeringSpec JSON file)"
MODELS = ("student", "baseline", "teacher")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run directory (pipeline or train)")
    p.add_argument("--prompt", required=True, help="text to continue")
    p.add_argument("--steer", help="SteeringSpec JSON file (cocomix_lens.steering)")
    p.add_argument("--model", default="student", choices=MODELS,
                   help="which of the run's models (only the CoCoMix student can be steered)")
    p.add_argument("--max-new-tokens", type=NEW_TOKENS, default=64, help="tokens to generate")
    p.add_argument("--temperature", type=TEMPERATURE, default=0.8, help="0 = greedy")
    p.add_argument("--top-p", type=TOP_P, default=0.95, help="nucleus sampling mass")
    p.add_argument("--seed", type=SEED, default=None, help="sampling seed (reproducible)")
    p.add_argument("--no-stop", action="store_true", help="keep going past <|endoftext|>")
    p.add_argument("--device", default="cpu", help="torch device")


def run(args: argparse.Namespace) -> int:
    from cocomix_lens.rundir import Run
    from cocomix_lens.steering import SteeringSpec, validate_spec

    run = Run.open(args.run, device=args.device)
    spec = SteeringSpec.load(args.steer) if args.steer else None
    model = getattr(run, args.model)
    if spec is not None:
        if args.model != "student":
            raise ValueError(f"--steer edits the CoCoMix student's concepts, not the "
                             f"{args.model}'s; fix: drop --model or --steer")
        spec = validate_spec(spec, model.cfg).with_catalogue_stds(run)
    text = model.generate(args.prompt, max_new_tokens=args.max_new_tokens,
                          temperature=args.temperature, top_p=args.top_p, seed=args.seed,
                          stop_at_eos=not args.no_stop, steering=spec)
    print(text)
    return 0

