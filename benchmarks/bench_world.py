"""World corpus preparation speed: `prepare --corpus world` to N tokens (target: 5M in < 60 s
on 2 cores, BPE training and per-token ground truth included), and the oracle's parse rate.

    python benchmarks/bench_world.py [--tokens 5000000] [--out /tmp/bench_world]

Prints wall and CPU time per phase: generation alone, then the whole prepare.
"""

from __future__ import annotations

import argparse
import shutil
import time

from training.corpus import open_corpus, prepare_shards
from training.corpus.world.generator import generate

TOKENS_PER_DOC = 69.7  # measured on seed 0 with the BPE-4096 tokenizer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=5_000_000)
    p.add_argument("--out", default="/tmp/bench_world")
    args = p.parse_args()
    docs = int(args.tokens / TOKENS_PER_DOC) + 1
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(min(docs, 10_000)):
        generate(0, i)
    gen = (time.perf_counter() - t0) / min(docs, 10_000)
    print(f"generate: {gen * 1e3:.3f} ms/doc wall "
          f"({(time.process_time() - c0) / min(docs, 10_000) * 1e3:.3f} ms CPU)")
    shutil.rmtree(args.out, ignore_errors=True)
    t0, c0 = time.perf_counter(), time.process_time()
    res = prepare_shards(open_corpus("world", max_docs=docs), args.out, vocab_size=4096)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = sum(s["tokens"] for s in res.manifest["splits"].values())
    print(f"prepare: {docs:,} documents, {n:,} tokens in {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"(target < 60 s for 5M tokens)")


if __name__ == "__main__":
    main()
