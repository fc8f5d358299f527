"""Search by meaning on a world run: does querying each topic name find the concept that
tracks that topic best?

For every topic value the catalogue search (`Catalogue.search`) is queried with its name; a
topic passes when one of the top 3 results has a sentence-level F1 for that topic (SAE latent
fires in the sentence, as the groundtruth stage scores it) within 0.05 of the best F1 any
concept reaches for it. Prints one line per topic (top result, its explanation, detection
score and F1) and the pass count.

    .venv/bin/python benchmarks/concept_search_world.py --run runs/demo
"""

from __future__ import annotations

import argparse

import numpy as np

TOP = 3
TOLERANCE = 0.05


def topic_f1(run) -> tuple[np.ndarray, list[str]]:
    """Sentence-level F1 [n_concepts, n_topics] of every SAE latent for every topic, its
    active set the top-k latents per token as in the groundtruth stage."""
    import json
    from types import SimpleNamespace

    from cocomix_lens.concepts import Teacher
    from cocomix_lens.data.truth import GroundTruth
    from cocomix_lens.groundtruth import Recovery, pool_units
    from training.pipeline_groundtruth import _windows, sae_active, sentence_units

    flat = json.loads((run.path / "pipeline.json").read_text())
    pair = Teacher(run.teacher, run.sae, "teacher", "sae")
    ctx = SimpleNamespace(teacher_pair=lambda: pair, cfg=SimpleNamespace(
        seq_len=flat["seq_len"], device="cpu", sae=SimpleNamespace(k=flat["sae.k"])))
    shards = run.shards
    active = sae_active(ctx, shards, _windows(shards.n_tokens("val"), flat["seq_len"]))
    truth = GroundTruth.open(run.require("shards"))
    n = len(active)
    cols = {"topic": (truth.column("val", "topic")[:n], truth.values("topic"))}
    rec = Recovery.from_active(*pool_units(active, sentence_units(shards, n), cols),
                               run.sae.cfg.d_sae)
    return rec.f1["topic"], rec.values["topic"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="a world pipeline run with its catalogue")
    args = ap.parse_args()
    from cocomix_lens.rundir import Run

    run = Run.open(args.run)
    cat = run.catalogue
    f1, topics = topic_f1(run)
    passed = 0
    print("| topic | top result | explanation | detection | its F1 | best F1 | pass |")
    print("|---|---|---|---:|---:|---:|---|")
    for j, topic in enumerate(topics):
        found = cat.search(topic, limit=TOP)
        best = float(f1[:, j].max())
        ok = any(f1[c, j] >= best - TOLERANCE for c in found.index)
        passed += ok
        c = int(found.index[0]) if len(found) else -1
        row = cat.concepts.loc[c] if c >= 0 else None
        print(f"| {topic} | {c} | {row['explanation'] if c >= 0 else '-'} | "
              f"{row['detection'] if c >= 0 else float('nan'):.2f} | "
              f"{f1[c, j] if c >= 0 else 0:.2f} | {best:.2f} | {'yes' if ok else 'no'} |")
    print(f"\n{passed} of {len(topics)} topics: a top-{TOP} result within {TOLERANCE} of the "
          "best F1")


if __name__ == "__main__":
    main()
