"""`cocomix-lens catalog`: build the concept catalogue of a run (stored in DIR/catalogue).

    cocomix-lens catalog --run runs/demo
    cocomix-lens catalog --run runs/demo --force --examples 16

Skipped when a catalogue built from the run's current weights, labels and shards exists;
rebuilt when any of them changed (or with --force).
"""

from __future__ import annotations

import argparse

from training.flags import number

HELP = "build the concept catalogue of a run: names, densities, contexts, tokens, metadata"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="pipeline run directory")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    p.add_argument("--examples", type=number(1, 1000), default=8,
                   help="max-activating contexts kept per concept and readout")
    p.add_argument("--device", default="cpu", help="torch device of teacher and student")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from cocomix_lens.catalogue import CatalogueConfig, build_for_run, concepts_table
    from cocomix_lens.data.files import remove_temporaries
    from cocomix_lens.progress import no_progress, progress_bar
    from cocomix_lens.rundir import Run

    run_ = Run.open(args.run, device=args.device)
    remove_temporaries(run_.catalogue_dir)  # of killed builds (dead writers' only)
    cat = None
    if run_.has("catalogue") and not args.force:
        try:
            cat = run_.catalogue
            print(f"catalog: {run_.catalogue_dir} is up to date (use --force to rebuild)")
        except ValueError as err:  # stale or of an older format: rebuild it
            print(f"catalog: rebuilding ({err})")
    if cat is None:
        cfg = CatalogueConfig(n_examples=args.examples)
        cat = build_for_run(run_, cfg, progress=no_progress if args.quiet else progress_bar)
        print(f"catalog: built {run_.catalogue_dir} in {cat.meta['build_s']:.1f} s")
    df = cat.concepts
    print(f"{len(df)} concepts, {int(df['dead'].sum())} dead; most predicted:")
    top = df[~df["dead"]].sort_values("prediction_density", ascending=False).head(10)
    print(concepts_table(top, ["name", "prediction_density", "label_density", "fires_on",
                               "student_tokens", "meta_value"]))
    return 0
