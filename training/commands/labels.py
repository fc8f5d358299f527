"""`cocomix-lens labels`: concept labels for every token of a token shard (the label cache).

    cocomix-lens labels --data runs/data --teacher gpt2 --out runs/labels
    cocomix-lens labels --data DIR --teacher runs/teacher --sae runs/sae --out DIR --k 4
    cocomix-lens labels --data DIR --teacher gpt2 --sae gpt2-small-resid-post-v5-32k \\
        --sae-id blocks.5.hook_resid_post --method attribution --window 256 --out DIR

Re-running the same command after an interruption resumes where it stopped.
"""

from __future__ import annotations

import argparse

from cocomix_lens.progress import progress_bar
from training.flags import number

HELP = "label every token of a token shard with the teacher's top-k SAE concepts"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cocomix_lens.concepts.methods import METHODS

    p.add_argument("--data", required=True, help="token shard directory (`cocomix-lens prepare`)")
    p.add_argument("--out", required=True, help="label cache directory (created or resumed)")
    p.add_argument("--teacher", default="gpt2",
                   help="TransformerLens model name (default gpt2, the paper's) or a local "
                        "CoCoMixModel checkpoint directory")
    p.add_argument("--sae", help="SAE-Lens release or local SAE directory (default: the "
                                 "paper's SAE for gpt2)")
    p.add_argument("--sae-id", help="SAE id within the release, e.g. blocks.5.hook_resid_post")
    p.add_argument("--method", default="attribution", choices=sorted(METHODS),
                   help="attribution method (default: the official code's attribution)")
    p.add_argument("--k", type=number(1, 1024), default=4, help="labels per token (paper: 4)")
    p.add_argument("--window", type=number(2, 1 << 20), default=256,
                   help="teacher context L: token i is labelled in window floor(i/L)*L")
    p.add_argument("--batch-size", type=number(1, 4096), default=8, help="windows per teacher call")
    p.add_argument("--splits", nargs="+", help="splits to label (default: all)")
    p.add_argument("--device", default="cpu", help="torch device for teacher and SAE")


def run(args: argparse.Namespace) -> int:
    from cocomix_lens.concepts import ConceptExtractor, LabelCache, load_teacher
    from cocomix_lens.data import TokenShards
    from cocomix_lens.rundir import check_device

    check_device(args.device)  # before the shards' hashes and the teacher, not after
    shards = TokenShards.open(args.data, verify=True)  # every shard's sha256, streamed
    teacher = load_teacher(args.teacher, args.sae, args.sae_id, device=args.device)
    extractor = ConceptExtractor(teacher.model, teacher.sae, method=args.method)
    cache = LabelCache.build(
        args.out, shards, extractor, teacher_sha=teacher.model_sha256,
        sae_sha=teacher.sae_sha256, teacher_name=teacher.model_spec,
        sae_name=teacher.sae_spec, k=args.k, window=args.window, batch_size=args.batch_size,
        splits=args.splits, progress=progress_bar)
    sizes = ", ".join(f"{s}={i['tokens']:,} tokens" for s, i in cache.meta["splits"].items())
    print(f"labels: {args.out} ({sizes}) method={args.method} k={args.k} "
          f"window={args.window} teacher={teacher.model_sha256[:12]} "
          f"sae={teacher.sae_sha256[:12]}")
    return 0
