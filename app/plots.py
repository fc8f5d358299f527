"""Plotly figures for the pages; pure functions of tables, so tests can call them.

Every function returns a `plotly.graph_objects.Figure` and never touches Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=340, legend_title_text="")


def _empty(title: str, why: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=why, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(title=title, xaxis_visible=False, yaxis_visible=False, **LAYOUT)
    return fig


def curves(frame: pd.DataFrame, title: str, y_title: str, log_y: bool = False) -> go.Figure:
    """Lines by tokens, one per `series` (a frame from training_data.select)."""
    if frame.empty:
        return _empty(title, "no records in this run")
    fig = px.line(frame, x="tokens", y="value", color="series", markers=len(frame) < 40,
                  log_y=log_y, hover_data=["step"])
    fig.update_layout(title=title, xaxis_title="tokens", yaxis_title=y_title, **LAYOUT)
    return fig


def with_baselines(fig: go.Figure, baselines: dict[str, float]) -> go.Figure:
    """Dotted horizontal lines (e.g. chance and label-frequency accuracy)."""
    for name, y in baselines.items():
        fig.add_hline(y=y, line_dash="dot", annotation_text=name)
    return fig


def stage_bars(times: pd.DataFrame) -> go.Figure:
    if times.empty:
        return _empty("Stage times", "not a pipeline run")
    long = times.melt(id_vars=["stage"], value_vars=["wall_s", "cpu_s"], var_name="clock",
                      value_name="seconds")
    fig = px.bar(long, x="stage", y="seconds", color="clock", barmode="group")
    fig.update_layout(title="Pipeline stage times", **LAYOUT)
    return fig


def lift_bar(lift: dict[str, float], title: str = "Metadata lift") -> go.Figure:
    """Bar per metadata value: how much more often the concept fires there than overall."""
    if not lift:
        return _empty(title, "no document metadata in this corpus")
    items = sorted(lift.items(), key=lambda kv: -kv[1])
    fig = go.Figure(go.Bar(x=[k for k, _ in items], y=[v for _, v in items]))
    fig.add_hline(y=1.0, line_dash="dot", annotation_text="base rate")
    fig.update_layout(title=title, yaxis_title="lift (× base rate)", **LAYOUT)
    return fig


def logit_histogram(values: Sequence[float] | None, stats: dict[str, float] | None = None,
                    title: str = "Predicted logit distribution") -> go.Figure:
    """Histogram of the concept's predicted logits (or, given only stats, a box of them)."""
    if values is not None and len(values):
        fig = go.Figure(go.Histogram(x=list(values), nbinsx=40))
    elif stats:
        fig = go.Figure(go.Box(name="logit", q1=[stats.get("q25", stats.get("mean", 0))],
                               median=[stats.get("median", stats.get("mean", 0))],
                               q3=[stats.get("q75", stats.get("mean", 0))],
                               lowerfence=[stats.get("min", 0)], upperfence=[stats.get("max", 0)],
                               mean=[stats.get("mean", 0)]))
    else:
        return _empty(title, "no logit statistics in the catalogue")
    fig.update_layout(title=title, xaxis_title="logit", **LAYOUT)
    return fig


def concept_heatmap(tokens: Sequence[str], concepts: Sequence[int], names: Sequence[str],
                    values: Any, title: str = "Student concept probabilities",
                    value: str = "p") -> go.Figure:
    """Heatmap tokens (x) × concepts (y); `values` [n_concepts, n_tokens]; hover names."""
    if not len(tokens) or not len(concepts):
        return _empty(title, "nothing to show")
    labels = [f"{c}: {n}" for c, n in zip(concepts, names)]
    xs = [f"{i}:{t}" for i, t in enumerate(tokens)]
    hover = [[f"token {i} {t!r}<br>concept {c}: {n}" for i, t in enumerate(tokens)]
             for c, n in zip(concepts, names)]
    fig = go.Figure(go.Heatmap(z=values, x=xs, y=labels, colorscale="Blues", text=hover,
                               hovertemplate=f"%{{text}}<br>{value} = %{{z:.3f}}<extra></extra>"))
    fig.update_layout(title=title, **{**LAYOUT, "height": 120 + 22 * len(concepts)})
    fig.update_yaxes(autorange="reversed")
    return fig


def token_bars(tokens: Sequence[str], values: Sequence[float], title: str,
               y_title: str) -> go.Figure:
    """One bar per token (agreement, ablation effect ...)."""
    if not len(tokens):
        return _empty(title, "nothing to show")
    xs = [f"{i}:{t}" for i, t in enumerate(tokens)]
    fig = go.Figure(go.Bar(x=xs, y=list(values)))
    fig.update_layout(title=title, yaxis_title=y_title, **LAYOUT)
    return fig


def sweep_plot(rows: pd.DataFrame, metric: str, title: str = "Strength sweep") -> go.Figure:
    """Dose-response of `metric`: steered and random-concept control means with CI bars by
    strength, the unsteered mean dotted (rows from steer_logic.sweep)."""
    rows = rows[rows.metric == metric] if not rows.empty else rows
    if rows.empty:
        return _empty(title, "run the sweep")
    fig = go.Figure()
    for cond in ("steered", "control"):
        r = rows[rows.condition == cond]
        fig.add_trace(go.Scatter(x=r.strength, y=r["mean"], mode="lines+markers", name=cond,
                                 error_y=dict(type="data", symmetric=False,
                                              array=r.hi - r["mean"],
                                              arrayminus=r["mean"] - r.lo)))
    base = rows[rows.condition == "unsteered"]["mean"]
    if len(base):
        fig.add_hline(y=float(base.iloc[0]), line_dash="dot", annotation_text="unsteered")
    fig.update_layout(title=title, xaxis_title="strength", yaxis_title=metric, **LAYOUT)
    return fig


def binned_histogram(counts: Sequence[float], edges: Sequence[float], title: str,
                     x_title: str) -> go.Figure:
    """Bars of precomputed histogram `counts` between `edges` (len(counts) + 1)."""
    if not len(counts):
        return _empty(title, "nothing recorded")
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    width = (edges[-1] - edges[0]) / max(len(counts), 1)
    fig = go.Figure(go.Bar(x=centres, y=list(counts), width=width))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title="count", **LAYOUT)
    return fig


def effect_bars(pairs: Sequence[tuple[str, float]], title: str) -> go.Figure:
    """Horizontal bars of (token, direct logit) pairs: promoted (> 0) and suppressed."""
    if not len(pairs):
        return _empty(title, "no tokens")
    words = [repr(str(w))[1:-1] for w, _ in pairs]
    values = [v for _, v in pairs]
    fig = go.Figure(go.Bar(x=values, y=words, orientation="h",
                           marker_color=["#1f77b4" if v >= 0 else "#d62728" for v in values]))
    fig.update_layout(title=title, xaxis_title="direct-path logit",
                      yaxis={"autorange": "reversed"}, **LAYOUT)
    return fig
