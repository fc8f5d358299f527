"""`cocomix-lens inspect`: which concepts a run's student predicts on a text, token by token.

    cocomix-lens inspect --run runs/demo --text "The river flows into the sea."
    cocomix-lens inspect --run runs/demo --text "..." --k 3 --csv inspect.csv

Per token: the student's top-k concepts (probability, attribution of the next-token logit;
'*' = also a teacher label), the teacher's attribution labels, precision@k, and the change of
log p(next token) when the concept slot c_t is zeroed (Δzero) or mean-replaced (Δmean).
"""

from __future__ import annotations

import argparse

from training.flags import number

HELP = "per-token concept predictions, teacher labels, attribution and ablation of a text"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="pipeline run directory")
    p.add_argument("--text", required=True, help="the text to inspect")
    p.add_argument("--k", type=number(1, 1024), default=5, help="concepts shown per token")
    p.add_argument("--no-teacher", action="store_true",
                   help="skip the teacher's labels (faster; no precision@k)")
    p.add_argument("--max-tokens", type=number(1, 1 << 20), help="print only the first N tokens")
    p.add_argument("--csv", help="also write the (token x concept) rows to this CSV file")


def run(args: argparse.Namespace) -> int:
    from cocomix_lens.inspection import inspect
    from cocomix_lens.rundir import Run

    run_ = Run.open(args.run)
    if args.no_teacher:
        catalogue = run_.catalogue if run_.has("catalogue") else None
        res = inspect(run_.student, args.text, k=args.k, catalogue=catalogue)
    else:
        res = inspect(run_, args.text, k=args.k)
    print(res.table(args.max_tokens))
    if args.csv:
        res.frame.to_csv(args.csv, index=False)
        print(f"inspect: {len(res.frame)} rows written to {args.csv}")
    return 0
