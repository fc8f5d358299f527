"""Does each steering op act at its registry default? Every op at a few strengths, one concept.

    python benchmarks/steer_ops.py --run runs/demo --topic farming

For the topic's best concept (`steering.topics.topic_concepts`) each op of the registry is
applied at its default and at the strengths given, through the evaluation harness (the same
prompts, sampling and seeds for every condition), and the continuations are compared with the
unsteered ones sample by sample: `changed` is the share of continuations that differ from the
unsteered one of the same seed, beside the on-topic share (world oracle), the grammatical share
and the unsteered student's probability of the concept. Writes
benchmarks/results/steer_ops/steer_ops.{json,md}.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import cocomix_lens.world.steering_scorers  # noqa: F401  (registers the oracle scorers)
from cocomix_lens import Run
from cocomix_lens.data.files import atomic_write_json, atomic_write_text
from cocomix_lens.sampling import Sampling
from cocomix_lens.steering.evaluate import Evaluation, Harness, default_prompts
from cocomix_lens.steering.method import spec_method
from cocomix_lens.steering.ops import OPS
from cocomix_lens.steering.spec import SteeringSpec, op_edit
from cocomix_lens.steering.topics import topic_concepts
from cocomix_lens.tables import markdown_table

GRID = {"scale": (-8.0, -4.0, 4.0, 8.0), "add": (4.0, 6.0, 8.0, 10.0),
        "vector": (6.0, 8.0, 12.0, 16.0), "set": (1.0, 2.0, 4.0, 8.0), "force": (0.0,),
        "ban": (0.0,)}
METRICS = ("oracle_on_target", "oracle_grammatical", "student_prob")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True)
    p.add_argument("--topic", default="farming")
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--out", default="benchmarks/results/steer_ops")
    args = p.parse_args()
    run = Run.open(args.run)
    concept = topic_concepts(run, args.topic).concepts[0]
    sampling = Sampling(max_new_tokens=args.max_new_tokens)
    harness = Harness(run, default_prompts(run), sampling,
                      Evaluation(n_samples=args.samples, scorers=METRICS,
                                 extras={"topic": args.topic}))
    base, base_vals = harness.condition(None, concept)
    rows, doc = [], {"run": args.run, "topic": args.topic, "concept": concept,
                     "sampling": sampling.kwargs(), "prompts": harness.prompts, "ops": []}
    unsteered = {m: float(np.nanmean(base_vals[m])) for m in METRICS}
    for op, strengths in GRID.items():
        default = OPS[op].default
        for s in sorted({*strengths, *(() if default is None else (default,))}):
            t0 = time.perf_counter()
            spec = SteeringSpec((op_edit(op, concept, s),))
            gens, vals = harness.condition(spec_method(run, spec), concept)
            changed = float(np.mean([a != b for a, b in zip(gens.texts, base.texts)]))
            means = {m: float(np.nanmean(vals[m])) for m in METRICS}
            label = f"{s:g}" + (" (default)" if default is not None and s == default else "")
            if OPS[op].range is None:
                label = "-"
            rows.append((op, label, f"{changed:.2f}",
                         *(f"{means[m]:.3f}" for m in METRICS)))
            doc["ops"].append({"op": op, "strength": s, "default": s == default,
                               "spec": spec_method(run, spec).record["spec"],
                               "changed": changed, **means,
                               "wall_s": round(time.perf_counter() - t0, 1)})
            print(rows[-1], flush=True)
    rows.append(("unsteered", "", "0.00", *(f"{unsteered[m]:.3f}" for m in METRICS)))
    doc["unsteered"] = unsteered
    table = markdown_table(("op", "strength", "changed", *METRICS), rows, "llrrrr", pad=True)
    md = (f"# Each op on concept {concept} (topic {args.topic}) of `{args.run}`\n\n"
          f"{args.samples} samples per condition over {len(harness.prompts)} openings, "
          f"{args.max_new_tokens} new tokens, `{sampling}`.\n\n{table}\n\n"
          f"Reproduce: `python benchmarks/steer_ops.py --run {args.run} --topic "
          f"{args.topic}`\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "steer_ops.json", doc)
    atomic_write_text(out / "steer_ops.md", md)
    print(md)


if __name__ == "__main__":
    main()
