"""`cocomix-lens concepts`: read a run's concept catalogue.

    cocomix-lens concepts --run runs/demo                   # the most predicted concepts
    cocomix-lens concepts --run runs/demo --search farming  # by meaning (word forms folded)
    cocomix-lens concepts --run runs/demo --example "The goat ate hay."  # by example
    cocomix-lens concepts --run runs/demo --id 123          # one concept's feature card
    cocomix-lens concepts --run runs/demo --id 123 --json card.json  # Neuronpedia-like JSON
"""

from __future__ import annotations

import argparse

from training.flags import number

HELP = "list, search or describe the concepts of a run (its catalogue)"

SORTS = ("prediction_density", "label_density", "act_density", "logit_std", "detection")
SHOWN = ["name", "explanation", "detection", "prediction_density", "label_density"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="pipeline run directory (with a catalogue)")
    p.add_argument("--search", help="words to look for in explanations, ground-truth values, "
                                    "tokens and contexts (word forms folded)")
    p.add_argument("--example", nargs="+", metavar="TEXT",
                   help="texts: the concepts the student predicts more on them than on "
                        "validation text")
    p.add_argument("--id", type=number(0, 1 << 24),
                   help="describe one concept (its feature card)")
    p.add_argument("--json", metavar="FILE", help="with --id: write the card as JSON here")
    p.add_argument("--top", type=number(1, 100_000), default=20, help="rows to list")
    p.add_argument("--sort", default="prediction_density", choices=SORTS,
                   help="column the list is sorted by (descending)")


def run(args: argparse.Namespace) -> int:
    from cocomix_lens.catalogue import concepts_table
    from cocomix_lens.rundir import Run

    r = Run.open(args.run)
    cat = r.catalogue
    if args.id is not None:
        return _card(r, cat, args)
    if args.example:
        from cocomix_lens.catalogue.search import by_example

        found = by_example(r.student, args.example, cat, limit=args.top)
        print(f"concepts predicted more on the {len(args.example)} text(s) than on validation "
              "text (contrast = peak logit - validation mean, in stds):")
        print(concepts_table(found, ["name", "explanation", "contrast", "peak",
                                     "background"]))
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


def _card(r, cat, args: argparse.Namespace) -> int:
    from cocomix_lens.catalogue.card import card_for_run
    from cocomix_lens.catalogue.render import concept_card
    from cocomix_lens.data.files import atomic_write_json

    c = cat.check_id(args.id)
    steering = r.steering if r.has("steering") else None
    print(concept_card(cat[c], names=list(cat.concepts["name"]), steering=steering))
    if args.json:
        atomic_write_json(args.json, card_for_run(r, c).to_json())
        print(f"card written to {args.json}")
    return 0
