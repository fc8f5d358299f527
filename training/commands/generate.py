"""`cocomix-lens generate`: text from a run's model, optionally steered by a spec file.

    cocomix-lens generate --run runs/demo --prompt "The history of"
    cocomix-lens generate --run runs/demo --prompt "The history of" --steer spec.json --seed 0
    cocomix-lens generate --run runs/demo --prompt "Anna was a nurse." --toward farming
    cocomix-lens generate --run runs/demo --prompt "Anna was a nurse." --toward war --keep-grammar

The spec is resolved against the run (`SteeringSpec.resolve`: add / vector edits in catalogue
stds take the catalogue's logit std), exactly as the app and `steer-eval` do, so the same
spec, prompt and sampling give the same text as `model.generate(prompt, **sampling.kwargs(),
steering=spec.resolve(run))`. Sampling flags are the fields of `cocomix_lens.sampling.Sampling`.
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

HELP = "generate text from a run's model (optionally steered by a SteeringSpec JSON file)"
MODELS = ("student", "baseline", "teacher")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cocomix_lens.sampling import Sampling
    from training.flags import add_flags

    p.add_argument("--run", required=True, help="run directory (pipeline or train)")
    p.add_argument("--prompt", required=True, help="text to continue")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--steer", help="SteeringSpec JSON file (cocomix_lens.steering)")
    what.add_argument("--toward", metavar="NAME",
                      help="steer toward a world topic or a concept (catalogue search) by name "
                           "with the recommended edit (cocomix_lens.steering.toward)")
    p.add_argument("--keep-grammar", action="store_true",
                   help="with --toward a topic: the edit the steering benchmark chose for it "
                        "keeping grammar within 10 points of unsteered (moves the topic less)")
    p.add_argument("--model", default="student", choices=MODELS,
                   help="which of the run's models (only the CoCoMix student can be steered)")
    add_flags(p, Sampling)
    p.add_argument("--no-stop", action="store_true", help="keep going past <|endoftext|>")
    p.add_argument("--device", default="cpu", help="torch device")


def run(args: argparse.Namespace) -> int:
    from cocomix_lens.rundir import Run
    from cocomix_lens.sampling import Sampling
    from cocomix_lens.steering import SteeringSpec, validate_spec
    from training.flags import from_flags

    if args.keep_grammar and not args.toward:
        raise ValueError("--keep-grammar chooses the edit of --toward; fix: add --toward TOPIC "
                         "or drop --keep-grammar")
    if args.steer and args.model != "student":
        raise ValueError(f"--steer edits the CoCoMix student's concepts, not the "
                         f"{args.model}'s; fix: drop --model or --steer")
    run = Run.open(args.run, device=args.device)
    model = getattr(run, args.model)
    spec = None
    if args.steer:
        spec = validate_spec(SteeringSpec.load(args.steer), model.cfg).resolve(run)
    if args.toward:
        from cocomix_lens.steering.toward import toward

        if args.model != "student":
            raise ValueError(f"--toward edits the CoCoMix student's concepts, not the "
                             f"{args.model}'s; fix: drop --model or --toward")
        spec, how = toward(run, args.toward, keep_grammar=args.keep_grammar)
        validate_spec(spec, model.cfg)
        log.info("steering toward %s", how)
    text = model.generate(args.prompt, **from_flags(Sampling, args).kwargs(),
                          stop_at_eos=not args.no_stop, steering=spec)
    print(text)
    return 0
