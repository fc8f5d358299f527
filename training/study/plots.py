"""Plotly figures of a study: val-loss curves with seed bands, the token-savings bar and the
ablation table. HTML always (plotly.js from its CDN, so the files stay small); PNG only when
kaleido is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

FIGURES = "figures"


def curves_figure(curves: dict[str, dict[Any, dict[str, list[float]]]]):
    """Mean val loss by training tokens per arm, with a ±1 std band over seeds."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (arm, seeds) in enumerate(curves.items()):
        runs = [c for c in seeds.values() if c["val_loss"]]
        if not runs:
            continue
        n = min(len(c["val_loss"]) for c in runs)
        tokens = runs[0]["tokens"][:n]
        losses = np.array([c["val_loss"][:n] for c in runs])
        mean, std = losses.mean(0), losses.std(0, ddof=1) if len(runs) > 1 else 0 * losses[0]
        color = _color(i)
        fig.add_trace(go.Scatter(x=tokens + tokens[::-1],
                                 y=list(mean + std) + list((mean - std)[::-1]),
                                 fill="toself", fillcolor=color, opacity=0.2, line_width=0,
                                 hoverinfo="skip", showlegend=False, legendgroup=arm))
        fig.add_trace(go.Scatter(x=tokens, y=mean, name=f"{arm} (n={len(runs)})",
                                 line_color=color, legendgroup=arm))
    fig.update_layout(title="Validation loss by training tokens (mean ± std over seeds)",
                      xaxis_title="training tokens", yaxis_title="val loss (nats)")
    return fig


def savings_figure(claims: list[dict[str, Any]]):
    """Share of the budget saved reaching the reference's final loss (claims a and b)."""
    import plotly.graph_objects as go

    names, means, stds = [], [], []
    for c in claims:
        s = c["numbers"].get("token_share_saved")
        if s and np.isfinite(s["mean"]):
            names.append(f"({c['id']}) {s['fast']} vs {s['reference']} "
                         f"[{s['reached']}/{len(s['per_seed'])} reached]")
            means.append(100 * s["mean"])
            stds.append(100 * s["std"])
    fig = go.Figure(go.Bar(x=names, y=means, error_y={"type": "data", "array": stds}))
    fig.update_layout(title="Tokens saved reaching the reference's final val loss "
                            "(% of budget, mean ± std over seeds that reach it)",
                      yaxis_title="% of tokens saved")
    return fig


def ablation_figure(table: list[dict[str, Any]]):
    """The final-loss table: arm, mean ± std, difference to cocomix."""
    import plotly.graph_objects as go

    cols = ["arm", "final val loss", "Δ vs cocomix", "seeds"]
    cells = [[r["arm"] for r in table], [f"{r['mean']:.4f} ± {r['std']:.4f}" for r in table],
             [f"{r['delta']:+.4f}" if r["delta"] is not None else "" for r in table],
             [r["n"] for r in table]]
    fig = go.Figure(go.Table(header={"values": cols}, cells={"values": cells}))
    fig.update_layout(title="Ablations: final validation loss (mean ± std over seeds)")
    return fig


def png_available() -> bool:
    return importlib.util.find_spec("kaleido") is not None


def write_figures(out: Path, curves: dict, claims: list[dict], table: list[dict]
                  ) -> dict[str, Any]:
    """Write every figure as HTML (and PNG when kaleido is there); what was written."""
    out.mkdir(parents=True, exist_ok=True)
    figs = {"curves": curves_figure(curves), "savings": savings_figure(claims),
            "ablations": ablation_figure(table)}
    png = png_available()
    files = []
    for name, fig in figs.items():
        fig.write_html(out / f"{name}.html", include_plotlyjs="cdn")
        files.append(f"{name}.html")
        if png:
            fig.write_image(out / f"{name}.png")
            files.append(f"{name}.png")
    note = None if png else "PNG not written: kaleido is not installed (pip install kaleido)"
    return {"files": files, "png": png, "note": note}


def _color(i: int) -> str:
    import plotly.express as px

    palette = px.colors.qualitative.Plotly
    return palette[i % len(palette)]
