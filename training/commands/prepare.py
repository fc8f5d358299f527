"""`cocomix-lens prepare`: corpus -> tokenizer -> token shards (train.bin, val.bin, manifest).

    cocomix-lens prepare --corpus wiki --vocab-size 4096 --out runs/data
    cocomix-lens prepare --corpus text --path my_docs/ --out runs/mydata
    cocomix-lens prepare --corpus hf --name roneneldan/TinyStories --max-docs 200000 --out DIR
    cocomix-lens prepare --corpus world --max-docs 20000 --out runs/world
"""

from __future__ import annotations

import argparse
from typing import Any

from cocomix_lens.progress import progress_bar
from training.flags import SEED, number

HELP = "tokenize a corpus (wiki offline default, local text, or HF dataset) into token shards"

# CLI dest -> corpus-source keyword; options left unset are not passed, and a source that
# does not take a set option answers with a one-line error.
CORPUS_OPTIONS = {"path": "path", "name": "name", "hf_config": "config", "split": "split",
                  "text_field": "text_field", "max_docs": "max_docs", "revision": "revision",
                  "data_files": "data_files", "separator": "separator", "world_seed": "seed"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cocomix_lens.data import TOKENIZERS
    from training.corpus import SOURCES

    p.add_argument("--corpus", default="wiki", choices=sorted(SOURCES),
                   help="wiki: offline Wikipedia summaries (default); text: local files; "
                        "hf: Hugging Face dataset; world: synthetic documents with known "
                        "per-token latent variables (truth_<split>.npy)")
    p.add_argument("--out", required=True, help="output directory for the shards")
    p.add_argument("--vocab-size", type=number(257, 1 << 20), default=4096,
                   help="BPE vocabulary size")
    p.add_argument("--tokenizer", default="bpe", choices=list(TOKENIZERS),
                   help="bpe: train on the corpus; gpt2/file: load --tokenizer-file")
    p.add_argument("--tokenizer-file", help="tokenizer.json for --tokenizer gpt2/file")
    p.add_argument("--val-fraction", type=number(0, 0.99, integer=False), default=0.02,
                   help="fraction of documents in the val split (by document, hashed)")
    p.add_argument("--split-seed", type=SEED, default=0, help="seed of the document split")
    p.add_argument("--force", action="store_true", help="overwrite DIR holding other shards")
    g = p.add_argument_group("corpus options")
    g.add_argument("--path", nargs="+", help="text: .txt/.jsonl files or directories")
    g.add_argument("--name", help="hf: dataset id, save_to_disk dir, or json/parquet/csv")
    g.add_argument("--hf-config", help="hf: dataset configuration name")
    g.add_argument("--split", help="hf: dataset split (default train)")
    g.add_argument("--data-files", nargs="+", help="hf: local data files for json/parquet/csv")
    g.add_argument("--revision", help="hf: pin a dataset revision")
    g.add_argument("--text-field", help="text/hf: field holding the text (default text)")
    g.add_argument("--separator", help="text: split .txt files on this string (e.g. '\\n\\n')")
    g.add_argument("--max-docs", type=number(1, 10**9), help="use only the first N documents "
                   "(world: generate N, default 20,000)")
    g.add_argument("--world-seed", type=SEED, help="world: seed of the generated documents")


def corpus_options(args: argparse.Namespace) -> dict[str, Any]:
    from training.corpus.text import unescape

    opts = {kw: getattr(args, dest) for dest, kw in CORPUS_OPTIONS.items()}
    if opts["separator"] is not None:
        opts["separator"] = unescape(opts["separator"])
    return opts


def run(args: argparse.Namespace) -> int:
    from training.corpus import open_corpus, prepare_shards

    corpus = open_corpus(args.corpus, **corpus_options(args))
    res = prepare_shards(corpus, args.out, tokenizer=args.tokenizer,
                         vocab_size=args.vocab_size, tokenizer_file=args.tokenizer_file,
                         val_fraction=args.val_fraction, seed=args.split_seed,
                         force=args.force, progress=progress_bar)
    m = res.manifest
    state = "up to date" if res.skipped else "prepared"
    print(f"{state}: {args.out} train={m['splits']['train']['tokens']:,} tokens "
          f"val={m['splits']['val']['tokens']:,} tokens vocab={m['vocab_size']} "
          f"tokenizer={m['tokenizer_sha256'][:12]}")
    return 0
