"""Small HTML renderings (highlighted tokens and contexts); pure functions returning strings."""

from __future__ import annotations

import html
from collections.abc import Sequence


def highlight_tokens(tokens: Sequence[str], values: Sequence[float],
                     marked: Sequence[bool] | None = None, rgb: str = "255,140,0",
                     top: float | None = None) -> str:
    """Tokens with a background whose opacity is value / top (default: max(values));
    `marked` ones underlined. Hovering a token shows its value."""
    top = top or max([float(v) for v in values] + [1e-12])
    spans = []
    for i, (t, v) in enumerate(zip(tokens, values)):
        alpha = max(0.0, float(v)) / top
        style = f"background: rgba({rgb},{alpha:.2f}); border-radius: 3px;"
        if marked is not None and marked[i]:
            style += " border-bottom: 2px solid rgb(200,60,0);"
        spans.append(f'<span style="{style}" title="{float(v):.3f}">'
                     f"{html.escape(t).replace(chr(10), '⏎<br>')}</span>")
    return '<div style="line-height: 1.9; white-space: pre-wrap;">' + "".join(spans) + "</div>"


def context_html(before: str, token: str, after: str) -> str:
    """A context with its active token marked."""
    esc = lambda s: html.escape(s).replace("\n", "⏎ ")
    return (f'<span style="color:#666">…{esc(before)}</span>'
            f'<mark style="background: rgb(255,200,120); font-weight: 600">{esc(token)}</mark>'
            f'<span style="color:#666">{esc(after)}…</span>')
