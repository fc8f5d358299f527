"""inspect() of a 128-token text with teacher and student (target: under 1 s on 2 CPU cores),
and loading a run's concept catalogue.

    .venv/bin/python benchmarks/bench_inspect.py --run runs/demo   # a real run (+ catalogue)
    .venv/bin/python benchmarks/bench_inspect.py                   # random demo-shaped models

Without --run the models are random, of the `make demo` shapes (student preset "tiny",
teacher d=192 x 4 layers, TopK SAE 2048 x k=16 on blocks.1.hook_resid_post), with a small BPE
trained on the fly: the timing depends on shapes only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

WORDS = ("the river flows into the sea while ships sail past old harbors and sailors sing "
         "songs of distant islands under the summer stars near quiet towns").split()


def random_parts():
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    from cocomix_lens import CoCoMixConfig, CoCoMixModel
    from cocomix_lens.concepts import ConceptExtractor
    from cocomix_lens.config import PRESETS
    from cocomix_lens.data import train_bpe

    torch.manual_seed(0)
    tok = train_bpe([" ".join(WORDS)] * 50, vocab_size=300)
    student = CoCoMixModel(CoCoMixConfig(**PRESETS["tiny"])).eval()
    teacher = CoCoMixModel(CoCoMixConfig(**{**PRESETS["tiny"], "d_model": 192, "n_heads": 6,
                                            "mix_mode": "none"})).eval()
    student.tokenizer = teacher.tokenizer = tok
    sae = TopKSAE(TopKSAEConfig(d_in=192, d_sae=2048, k=16, metadata=SAEMetadata(
        hook_name="blocks.1.hook_resid_post"))).eval()
    return student, ConceptExtractor(teacher, sae), None


def run_parts(path: str):
    from cocomix_lens import Run
    from cocomix_lens.concepts import ConceptExtractor

    run = Run.open(path)
    t0 = time.perf_counter()
    cat = run.catalogue if run.has("catalogue") else None
    if cat is not None:
        print(f"catalogue: {len(cat)} concepts opened in {time.perf_counter() - t0:.3f} s "
              "(with the source-hash staleness check)")
    extractor = ConceptExtractor(run.teacher, run.sae, method=run.labels.meta["method"])
    return run.student, extractor, cat


def text_of(model, n_tokens: int) -> str:
    words = (WORDS * (4 * n_tokens // len(WORDS) + 1))
    ids = model.tokenizer.encode(" ".join(words).capitalize()).ids[:n_tokens]
    return model.tokenizer.decode(ids)


def timed(fn, repeats: int) -> tuple[float, float, float]:
    """(best wall s, median wall s, best CPU s of this process): on a shared machine the CPU
    time says what the call costs when it has its cores to itself."""
    fn()  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), statistics.median(walls), min(cpus)


def main() -> None:
    from cocomix_lens.inspection import inspect, slot_effects

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a pipeline run directory (default: random demo shapes)")
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    student, extractor, cat = run_parts(args.run) if args.run else random_parts()
    text = text_of(student, args.tokens)
    tokens = student.to_tokens(text)
    print(f"{'run ' + args.run if args.run else 'random demo-shaped models'}; "
          f"{tokens.shape[1]} tokens; {args.threads} threads; wall best / median and CPU "
          f"best of {args.repeats}; load average {os.getloadavg()[0]:.1f}")
    cases = {
        "inspect, teacher + student": lambda: inspect(student, text, extractor=extractor,
                                                      catalogue=cat),
        "inspect, student only": lambda: inspect(student, text, catalogue=cat),
        "  slot probes (attribution, ablations)": lambda: slot_effects(
            student, tokens, concepts=torch.zeros(tokens.shape[1] - 1, 5, dtype=torch.long)),
        "  teacher attribution map": lambda: extractor.attribution_map(tokens[0], k=5),
    }
    for name, fn in cases.items():
        best, med, cpu = timed(fn, args.repeats)
        print(f"{name:<42} {best:7.3f} s {med:7.3f} s   cpu {cpu:6.3f} s")


if __name__ == "__main__":
    main()
