"""A concept's feature card, with the fields of a Neuronpedia feature page, from its
catalogue record (and the run's measured steering, when there is some).

    card = feature_card(cat[12], steering=run.steering)   # or card_for_run(run, 12)
    card.activation_histogram                  # {"counts": [...], "edges": [...]}
    strict_json(card.to_json())                # Neuronpedia-like JSON (one concept)
    str(cat[12])                               # the card as text (render.concept_card)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from cocomix_lens.catalogue.contexts import mark

# A `ConceptRecord` comes in typed Any: catalogue/store.py imports this module, and an import
# back, even for type checkers only, would close a circle (tests/test_import_rules.py).

HIST_BINS = 20
READOUTS = ("teacher", "student")  # SAE decoder row via the teacher; compressor row


@dataclass
class FeatureCard:
    """One concept. Readout-keyed dicts hold "teacher" (the SAE latent / decoder row) and
    "student" (the student's concept logit / compressor row W_comp[c])."""

    concept: int
    name: str
    explanation: str
    detection: float  # AUROC of the explanation's words (catalogue.explain)
    dead: bool
    density: dict[str, float]  # act (SAE > 0), prediction (student top-k), label
    activation_histogram: dict[str, dict[str, list[float]]]  # readout -> counts, edges
    logit_histogram: dict[str, dict[str, list[float]]]  # readout -> counts, edges (vocab)
    top_logits: dict[str, list[tuple[str, float]]]  # readout -> (token, direct logit)
    bottom_logits: dict[str, list[tuple[str, float]]]
    contexts: dict[str, list[dict[str, Any]]]  # readout -> {value, text}, best first
    quantile_contexts: dict[str, list[dict[str, Any]]]  # readout -> {bin, value, text}
    neighbours: dict[str, list[dict[str, Any]]]  # readout -> {concept, name, cosine}
    truth: str = ""
    truth_f1: float = float("nan")
    steering: dict[str, Any] = field(default_factory=dict)  # measured, from the run

    def to_json(self) -> dict[str, Any]:
        """Neuronpedia's feature-page keys where one exists (the teacher readout), ours for
        the rest (write it with `cocomix_lens.data.files.strict_json`: NaN becomes null)."""
        t = "teacher"
        out = {
            "index": self.concept, "name": self.name,
            "explanations": [{"description": self.explanation, "method": "contrastive keywords",
                              "scores": [{"type": "detection_auroc",
                                          "value": self.detection}]}],
            "frac_nonzero": self.density["act"],
            "freq_hist_data_bar_heights": self.activation_histogram[t]["counts"],
            "freq_hist_data_bar_values": _centres(self.activation_histogram[t]["edges"]),
            "logits_hist_data_bar_heights": self.logit_histogram[t]["counts"],
            "logits_hist_data_bar_values": _centres(self.logit_histogram[t]["edges"]),
            "pos_str": [w for w, _ in self.top_logits[t]],
            "pos_values": [v for _, v in self.top_logits[t]],
            "neg_str": [w for w, _ in self.bottom_logits[t]],
            "neg_values": [v for _, v in self.bottom_logits[t]],
            "activations": [{"text": c["text"], "maxValue": c["value"]}
                            for c in self.contexts[t]],
            "topkCosSimIndices": [n["concept"] for n in self.neighbours[t]],
            "topkCosSimValues": [n["cosine"] for n in self.neighbours[t]],
            "cocomix": asdict(self),
        }
        return out


def feature_card(rec: Any, names: list[str] | None = None,
                 steering: dict[str, Any] | None = None) -> FeatureCard:
    """The card of catalogue record `rec`; `names` (all concepts' names) names the
    neighbours; `steering` a run's steering.json (`Run.steering`)."""
    i = rec.info
    return FeatureCard(
        concept=rec.id, name=str(i["name"]), explanation=str(i.get("explanation") or ""),
        detection=float(i.get("detection", math.nan)), dead=bool(i["dead"]),
        density={"act": float(i["act_density"]), "prediction": float(i["prediction_density"]),
                 "label": float(i["label_density"])},
        activation_histogram={r: _histogram(rec.activity, r) for r in READOUTS},
        logit_histogram={r: _vocab_histogram(i, r) for r in READOUTS},
        top_logits={r: _pairs(i, f"{r}_tokens", f"{r}_token_logits") for r in READOUTS},
        bottom_logits={r: _pairs(i, f"{r}_bottom_tokens", f"{r}_bottom_token_logits")
                       for r in READOUTS},
        contexts={r: _contexts(rec, r) for r in READOUTS},
        quantile_contexts={r: _contexts(rec, f"{r}_quantile") for r in READOUTS},
        neighbours={r: _neighbours(i, r, names) for r in READOUTS},
        truth=str(i.get("truth") or ""), truth_f1=float(i.get("truth_f1", math.nan)),
        steering=measured_steering(steering, rec.id))


def card_for_run(run: Any, concept: int) -> FeatureCard:
    """`feature_card` of a `Run`'s concept, with the run's steering results when present."""
    cat = run.catalogue
    steering = run.steering if run.has("steering") else None
    return feature_card(cat[concept], list(cat.concepts["name"]), steering)


def measured_steering(steering: dict[str, Any] | None, concept: int) -> dict[str, Any]:
    """The concept's rows of a steering.json: its screen result and, if it was the chosen
    concept, the final evaluation; {} when it was not steered."""
    if not steering:
        return {}
    out = {}
    for row in steering.get("screen", []):
        if int(row.get("concept", -1)) == concept:
            out["screen"] = row
    if steering.get("concept") == concept and steering.get("final"):
        out["final"] = steering["final"]
        out["clear"] = steering.get("clear", {})
    return out


def _histogram(activity: Any, readout: str) -> dict[str, list[float]]:
    values = activity.loc[activity["source"] == readout, "value"].to_numpy(dtype=np.float64) \
        if len(activity) else np.zeros(0)
    if not len(values):
        return {"counts": [], "edges": []}
    counts, edges = np.histogram(values, bins=HIST_BINS)
    return {"counts": counts.tolist(), "edges": edges.tolist()}


def _vocab_histogram(info: dict[str, Any], readout: str) -> dict[str, list[float]]:
    counts = info.get(f"{readout}_logit_hist")
    if counts is None or not len(counts):
        return {"counts": [], "edges": []}
    lo, hi = info[f"{readout}_logit_range"]
    return {"counts": [int(c) for c in counts],
            "edges": np.linspace(lo, hi, len(counts) + 1).tolist()}


def _pairs(info: dict[str, Any], words: str, values: str) -> list[tuple[str, float]]:
    if info.get(words) is None:
        return []
    return [(str(w), float(v)) for w, v in zip(info[words], info[values])]


def _contexts(rec: Any, source: str) -> list[dict[str, Any]]:
    rows = rec.contexts[rec.contexts["source"] == source]
    key = "bin" if source.endswith("_quantile") else "rank"
    return [{key: int(r), "value": float(v), "text": mark(a, b, c)}
            for r, v, a, b, c in zip(rows["rank"], rows["value"], rows["left"], rows["token"],
                                     rows["right"])]


def _neighbours(info: dict[str, Any], readout: str,
                names: list[str] | None) -> list[dict[str, Any]]:
    ids = info.get(f"{readout}_neighbours")
    if ids is None:
        return []
    return [{"concept": int(c), "name": names[int(c)] if names else "", "cosine": float(v)}
            for c, v in zip(ids, info[f"{readout}_neighbour_cos"])]


def _centres(edges: list[float]) -> list[float]:
    return [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
