"""The results of `cocomix-lens study` for people: study.json's verdict table and figures.

    doc = Run.open("runs/world").study        # RUN/study/study.json (Run is its one reader)
    rows = verdict_rows(doc)                  # claim, verdict, effect, numbers, test
    fig = curves_figure(doc["curves"])        # plotly: val loss by tokens, ±1 std over seeds

The study (training/study/) writes study.json, study.md and figures/ with these builders; the
app draws the same figures from study.json. Plotly is imported inside the builders.

study.json (written by training/study/report.py):
    curves     {arm: {seed: {"tokens": [...], "val_loss": [...]}}}
    claims     [{id, title, verdict, test, comparisons: [{better, worse, mean, std, lo, hi, n,
                 sign_p, verdict}], numbers: {token_share_saved?, best_by_mean?, ...}}]
    ablations  [{arm, mean, std, n, delta}]   final val loss per arm; delta vs cocomix
NaN is stored as null (strict JSON), so every reader here accepts both.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from cocomix_lens.rundir import LAYOUT

# File names inside a study directory (RUN/study, or a copy such as benchmarks/results/).
STUDY_JSON = PurePosixPath(LAYOUT.pipeline.study_json).name
STUDY_MD, FIGURES = "study.md", "figures"
MAKE = "cocomix-lens study --run {run} --seeds 3"
"""The command that makes a study (shown where a run has none)."""


# ---- the verdict table ------------------------------------------------------------------------
def verdict_rows(doc: dict[str, Any]) -> list[dict[str, str]]:
    """One row per claim: claim "(id) title", verdict, effect, numbers, test, paper."""
    return [{"claim": f"({c['id']}) {c['title']}", "verdict": c["verdict"],
             "effect": effects_text(c, sep="; "), "numbers": numbers_text(c),
             "test": c.get("test", ""), "paper": c.get("paper", "")} for c in doc["claims"]]


def effects_text(claim: dict[str, Any], sep: str = "<br>") -> str:
    """Each comparison: mean ± std over seeds [95 % CI] (n, sign-test p)."""
    parts = []
    for comp in claim["comparisons"]:
        if comp.get("verdict") == "not run" or "mean" not in comp:
            parts.append(f"{comp.get('better', '?')} vs {comp.get('worse', '?')}: not run")
            continue
        num = fmt_number
        parts.append(f"{comp['better']} vs {comp['worse']}: {num(comp['mean'], 4, '+')} ± "
                     f"{num(comp['std'], 4)} [{num(comp['lo'], 4)}, {num(comp['hi'], 4)}] "
                     f"(n={comp['n']}, sign p={num(comp['sign_p'], 2)})")
    return sep.join(parts) or claim["numbers"].get("reason", "")


def numbers_text(claim: dict[str, Any]) -> str:
    """The claim's own numbers: tokens saved, the best arm, mean ± std of measurements."""
    n = claim["numbers"]
    out = []
    if "token_share_saved" in n:
        s = n["token_share_saved"]
        out.append(f"tokens saved {_pct(s['mean'])} ± {_pct(s['std'])} "
                   f"({s['reached']}/{len(s['per_seed'])} seeds reach the target)")
    if "best_by_mean" in n:
        out.append(f"best by mean: {n['best_by_mean']}")
    for key in ("steered", "control", "unsteered", "ntp", "cocomix"):
        if isinstance(n.get(key), (list, tuple)):
            out.append(f"{key} {fmt_number(n[key][0], 4)} ± {fmt_number(n[key][1], 4)}")
    if "reason" in n:
        out.append(n["reason"])
    return "; ".join(out)


def savings_rows(claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Claims with a finite token share saved: label, mean and std in % of the budget."""
    rows = []
    for c in claims:
        s = c["numbers"].get("token_share_saved")
        if s and _finite(s["mean"]):
            rows.append({"label": f"({c['id']}) {s['fast']} vs {s['reference']} "
                                  f"[{s['reached']}/{len(s['per_seed'])} reached]",
                         "mean": 100 * s["mean"], "std": 100 * (s["std"] or 0.0)})
    return rows


# ---- figures ----------------------------------------------------------------------------------
def curves_figure(curves: dict[str, dict[Any, dict[str, list[float]]]]):
    """Mean val loss by training tokens per arm, with a ±1 std band over seeds (sample std;
    none with one seed). Curves of unequal length are cut to the shortest."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (arm, seeds) in enumerate(curves.items()):
        runs = [c for c in seeds.values() if c["val_loss"]]
        if not runs:
            continue
        n = min(len(c["val_loss"]) for c in runs)
        tokens = list(runs[0]["tokens"][:n])
        losses = np.array([c["val_loss"][:n] for c in runs], dtype=float)  # [seeds, points]
        mean = losses.mean(0)
        std = losses.std(0, ddof=1) if len(runs) > 1 else np.zeros(n)
        color = _color(i)
        # lists, not arrays: plotly would store arrays as base64 in the figure's JSON
        fig.add_trace(go.Scatter(x=tokens + tokens[::-1],
                                 y=(mean + std).tolist() + (mean - std)[::-1].tolist(),
                                 fill="toself", fillcolor=color, opacity=0.2, line_width=0,
                                 hoverinfo="skip", showlegend=False, legendgroup=arm,
                                 name=f"{arm} band"))
        fig.add_trace(go.Scatter(x=tokens, y=mean.tolist(), name=f"{arm} (n={len(runs)})",
                                 line_color=color, legendgroup=arm))
    fig.update_layout(title="Validation loss by training tokens (mean ± std over seeds)",
                      xaxis_title="training tokens", yaxis_title="val loss (nats)")
    return fig


def savings_figure(claims: list[dict[str, Any]]):
    """Share of the budget saved reaching the reference's final loss (claims a and b)."""
    import plotly.graph_objects as go

    rows = savings_rows(claims)
    fig = go.Figure(go.Bar(x=[r["label"] for r in rows], y=[r["mean"] for r in rows],
                           error_y={"type": "data", "array": [r["std"] for r in rows]}))
    fig.update_layout(title="Tokens saved reaching the reference's final val loss<br>"
                            "<sup>% of budget, mean ± std over the seeds that reach it</sup>",
                      yaxis_title="% of tokens saved")
    if not rows:
        fig.add_annotation(text="no arm reached the reference's final loss in any seed",
                           showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


def ablation_figure(table: list[dict[str, Any]]):
    """The final-loss table: arm, mean ± std, difference to cocomix."""
    import plotly.graph_objects as go

    cols = ["arm", "final val loss", "Δ vs cocomix", "seeds"]
    cells = [[r["arm"] for r in table],
             [f"{fmt_number(r['mean'], 4)} ± {fmt_number(r['std'], 4)}" for r in table],
             ["" if r["delta"] is None else fmt_number(r["delta"], 4, "+") for r in table],
             [r["n"] for r in table]]
    fig = go.Figure(go.Table(header={"values": cols}, cells={"values": cells}))
    fig.update_layout(title="Ablations: final validation loss (mean ± std over seeds)")
    return fig


def figures(doc: dict[str, Any]) -> dict[str, Any]:
    """Every figure of a study, by file stem: curves, savings, ablations."""
    # The arms in the ablation table's order (study.json stores the curves' keys sorted), so
    # ntp and cocomix keep the first colours.
    order = [r["arm"] for r in doc["ablations"] if r["arm"] in doc["curves"]]
    curves = {arm: doc["curves"][arm] for arm in [*order, *sorted(doc["curves"])]}
    return {"curves": curves_figure(curves), "savings": savings_figure(doc["claims"]),
            "ablations": ablation_figure(doc["ablations"])}


def _color(i: int) -> str:
    import plotly.express as px

    palette = px.colors.qualitative.Dark24  # 24 colours: the study has 11+ arms
    return palette[i % len(palette)]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _pct(x: Any) -> str:
    return f"{100 * x:.1f} %" if _finite(x) else "n/a"


def fmt_number(x: Any, digits: int, sign: str = "") -> str:
    """x with `digits` decimals and thousands separators ("+": always signed); n/a if not a
    finite number (None is how study.json stores NaN)."""
    return f"{x:{sign},.{digits}f}" if _finite(x) else "n/a"
