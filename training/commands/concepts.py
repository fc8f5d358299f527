"""`cocomix-lens concepts`: read a run's concept catalogue.

    cocomix-lens concepts --run runs/demo                 # the most predicted concepts
    cocomix-lens concepts --run runs/demo --search river  # by name, tokens, contexts
    cocomix-lens concepts --run runs/demo --id 123        # one concept's card
"""

from __future__ import annotations

import argparse

from training.flags import number

HELP = "list, search or describe the concepts of a run (its catalogue)"

SORTS = ("prediction_density", "label_density", "act_density", "logit_std")
SHOWN = ["name", "prediction_density", "label_density", "fires_on", "teacher_tokens",
         "student_tokens", "meta_value"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="pipeline run directory (with a catalogue)")
    p.add_argument("--search", help="a word to look for in names, tokens and contexts")
    p.add_argument("--id", type=number(0, 1 << 24), help="describe one concept")
    p.add_argument("--top", type=number(1, 100_000), default=20, help="rows to list")
    p.add_argument("--sort", default="prediction_density", choices=SORTS,
                   help="column the list is sorted by (descending)")


def run(args: argparse.Namespace) -> int:
    from cocomix_lens.catalogue import concepts_table
    from cocomix_lens.rundir import Run

    cat = Run.open(args.run).catalogue
    if args.id is not None:
        print(cat[args.id])
    elif args.search is not None:
        found = cat.search(args.search, limit=args.top)
        print(f"{len(found)} concept(s) matching {args.search!r}:" if len(found) else
              f"no concept matches {args.search!r}; try another word or "
              "`cocomix-lens concepts --run DIR` for the list")
        if len(found):
            print(concepts_table(found, ["name", "score", "matched"] + SHOWN[1:]))
    else:
        live = cat.concepts[~cat.concepts["dead"]]
        print(f"{len(cat)} concepts ({len(cat) - len(live)} dead); top {args.top} by "
              f"{args.sort}:")
        print(concepts_table(live.sort_values(args.sort, ascending=False).head(args.top),
                             SHOWN))
    return 0
