"""Topic steering on a world run, scored exactly by the oracle (issue 12's acceptance run).

For each topic asked for, the concept best aligned with it is the SAE latent with the highest
sentence-level F1 for that topic (the run's groundtruth.json). The script sweeps CoCoMix
concept steering (`add`, in logit stds) and classic SAE steering of the teacher (`sae`, in
residual norms), picks for each arm the largest strength whose grammatical share stays within
10 points of unsteered (`--max-grammar-drop`), and evaluates both at those strengths with more
samples, beside the unsteered run and a random-concept control (bootstrap CIs over samples).

    python benchmarks/steer_world.py --run runs/demo --topics travel farming \
        --out benchmarks/results/steering_world

Writes <out>/steering.json (every estimate, per-sample values, example texts) and
<out>/steering.md (the tables).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cocomix_lens.world.steering_scorers  # noqa: F401  (registers the oracle scorers)
from cocomix_lens import Run
from cocomix_lens.data.files import atomic_write_json, atomic_write_text
from cocomix_lens.sampling import Sampling
from cocomix_lens.steering import SteeringSpec
from cocomix_lens.steering.evaluate import Evaluation, evaluate_steering, sweep
from training.steering_screen import FluencyBounds, pick_strength

SCORERS = ["oracle_on_target", "oracle_grammatical", "sae_act", "student_prob", "ppl_ntp"]


def topic_concepts(run_dir: Path) -> dict[str, tuple[int, float]]:
    """topic -> (SAE latent with the best sentence-level F1, that F1)."""
    gt = json.loads((run_dir / "groundtruth.json").read_text())
    values = gt["sentence_sources"]["sae"]["variables"]["topic"]["values"]
    return {t: (int(v["concept"]), float(v["f1"])) for t, v in values.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True)
    p.add_argument("--topics", nargs="+", default=["travel", "farming"])
    p.add_argument("--add", type=float, nargs="+", default=[2, 4, 6, 8, 12])
    p.add_argument("--sae", type=float, nargs="+", default=[0.3, 0.45, 0.6, 0.75, 0.9])
    p.add_argument("--max-grammar-drop", type=float, default=0.10)
    p.add_argument("--sweep-samples", type=int, default=32)
    p.add_argument("--samples", type=int, default=128)
    p.add_argument("--out", default="benchmarks/results/steering_world")
    args = p.parse_args()
    run_dir, out = Path(args.run), Path(args.out)
    run = Run.open(run_dir)
    aligned = topic_concepts(run_dir)
    doc: dict = {"run": str(run_dir), "settings": vars(args), "topics": {}}
    md = [f"# Topic steering on `{run_dir}`", ""]
    for topic in args.topics:
        c, f1 = aligned[topic]
        ev = Evaluation(n_samples=args.sweep_samples, scorers=tuple(SCORERS),
                        extras={"topic": topic})
        t0 = time.perf_counter()
        sweeps = {
            "cocomix_add": sweep(run, c, "add", args.add, None, Sampling(), ev),
            "sae": sweep(run, c, "add", args.sae, None, Sampling(), ev, arm="sae")}
        bounds = FluencyBounds(max_grammar_drop=args.max_grammar_drop)
        chosen = {k: pick_strength(sw, "oracle_grammatical", bounds) for k, sw in sweeps.items()}
        final = evaluate_steering(run, SteeringSpec().add(c, chosen["cocomix_add"]), None,
                                  Sampling(), Evaluation(n_samples=args.samples,
                                                         scorers=tuple(SCORERS),
                                                         extras={"topic": topic}),
                                  sae_strength=chosen["sae"])
        wall = time.perf_counter() - t0
        doc["topics"][topic] = {"concept": c, "sentence_f1": f1, "wall_s": wall,
                                "chosen": chosen,
                                "sweeps": {k: s.to_dict() for k, s in sweeps.items()},
                                "final": final.to_dict()}
        md += [f"## {topic}: SAE latent {c} (sentence-level topic F1 {f1:.2f})", "",
               f"Chosen strengths (grammar within {args.max_grammar_drop:.0%} of unsteered): "
               f"CoCoMix add {chosen['cocomix_add']:g} std, SAE {chosen['sae']:g}.", "", "```"]
        md += [s.table() for s in sweeps.values()] + [final.table(), "```", ""]
        print(f"{topic}: concept {c} (F1 {f1:.2f}), {wall:.0f} s")
        print(final.table())
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "steering.json", doc)
    atomic_write_text(out / "steering.md", "\n".join(md))
    print(f"wrote {out}/steering.json and steering.md")


if __name__ == "__main__":
    main()
