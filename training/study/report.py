"""study.json and study.md: the settings, every run's final numbers, the curves and each
claim's verdict with its numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cocomix_lens.data.files import atomic_write_json, atomic_write_text
from cocomix_lens.tables import markdown_table
from report.study import STUDY_JSON as JSON
from report.study import STUDY_MD as MARKDOWN
from report.study import effects_text, fmt_number, numbers_text
from training.study.stats import mean_std


def ablation_table(curves: dict[str, dict[Any, dict[str, list[float]]]]) -> list[dict]:
    """Per arm: final val loss mean ± std over seeds and the mean paired gap to cocomix."""
    finals = {arm: {int(s): c["val_loss"][-1] for s, c in seeds.items() if c["val_loss"]}
              for arm, seeds in curves.items()}
    ref = finals.get("cocomix", {})
    rows = []
    for arm, f in finals.items():
        mean, std = mean_std(list(f.values()))
        shared = sorted(set(f) & set(ref))
        delta = (sum(f[s] - ref[s] for s in shared) / len(shared)) if shared else None
        rows.append({"arm": arm, "mean": mean, "std": std, "n": len(f), "delta": delta})
    return rows


def write_json(root: Path, doc: dict[str, Any]) -> Path:
    path = root / JSON
    atomic_write_json(path, doc)
    return path


def write_markdown(root: Path, doc: dict[str, Any]) -> Path:
    path = root / MARKDOWN
    atomic_write_text(path, render(doc))
    return path


def render(doc: dict[str, Any]) -> str:
    s = doc["settings"]
    lines = [f"# CoCoMix study: {doc['run']}", "",
             f"Seeds {s['seeds']}, {doc['budget']:,} training tokens per run, validation on "
             f"a fixed set of {doc['eval_tokens']:,} tokens every {doc['eval_every_tokens']:,} "
             f"tokens. Verdicts: paired differences over seeds, 95 % t-interval (holds: above "
             f"0; does not hold: below the minimal effect; else inconclusive); sign-test p "
             f"beside it. With 2-3 seeds most verdicts are inconclusive unless the effect is "
             f"large and consistent.", "",
             "## Claims", "",
             markdown_table(("claim", "verdict", "effect (mean ± std over seeds) [95 % CI]",
                             "numbers", "paper"),
                            [(f"({c['id']}) {c['title']}", f"**{c['verdict']}**",
                              effects_text(c), numbers_text(c), c.get("paper", ""))
                             for c in doc["claims"]])]
    lines += ["", "## Final validation loss", "", markdown_table(
        ("arm", "val loss", "Δ vs cocomix", "seeds"),
        [(r["arm"], f"{r['mean']:.4f} ± {r['std']:.4f}",
          "" if r["delta"] is None else f"{r['delta']:+.4f}", r["n"])
         for r in doc["ablations"]])]
    figs = doc["figures"]
    lines += ["", "## Figures", "", ", ".join(f"[{f}](figures/{f})" for f in figs["files"])]
    if figs.get("note"):
        lines.append(f"({figs['note']})")
    runs = [(arm, seed, f"{r['val_loss']:.4f}", fmt_number(r.get("tokens_per_s"), 0),
             fmt_number(r.get("wall_s"), 0))
            for arm in _arm_order(doc) for seed, r in doc["runs"][arm].items()]
    lines += ["", "## Runs", "", markdown_table(("arm", "seed", "val loss", "tokens/s",
                                                 "wall s"), runs)]
    return "\n".join(lines) + "\n"


def _arm_order(doc: dict[str, Any]) -> list[str]:
    """The run arms in the study's order (study.json stores its keys sorted)."""
    order = [a["name"] for a in doc.get("arms", [])]
    return sorted(doc["runs"], key=lambda a: order.index(a) if a in order else len(order))


def load(root: Path) -> dict[str, Any]:
    return json.loads((root / JSON).read_text())
