"""The text table of an `Inspection`: two lines per token (student concepts, teacher labels)."""

from __future__ import annotations

from typing import Any

import numpy as np

# A `Inspection` comes in typed Any: cocomix_lens.inspection.core imports this module, and an import
# back, even for type checkers only, would close a circle (tests/test_import_rules.py).

NAME_WIDTH = 18


def inspection_table(res: Any, max_tokens: int | None = None) -> str:
    """Per token: position, token -> next token, log p(next), slot ablation deltas, P@k, then
    the student's top-k (probability, attribution; '*' = also a teacher label) and the
    teacher's labels."""
    head = (f"{'pos':>4}  {'token':<14} {'next':<14} {'logp':>7} {'Δzero':>7} {'Δmean':>7}"
            f"{'  P@' + str(res.k):>7}")
    lines = [head, "-" * len(head)]
    groups = dict(tuple(res.frame.groupby("pos", sort=True)))
    rows = res.tokens if max_tokens is None else res.tokens.head(max_tokens)
    for row in rows.itertuples(index=False):
        lines.append(f"{row.pos:>4}  {_tok(row.token):<14} {_tok(row.next_token):<14} "
                     f"{_num(row.logprob)} {_num(row.delta_zero)} {_num(row.delta_mean)} "
                     f"{_num(row.precision_at_k, '.2f', 6)}")
        frame = groups.get(row.pos)
        if frame is None:
            continue
        student = frame[frame["student_rank"].notna()].sort_values("student_rank")
        lines.append("      student  " + "  ".join(
            f"#{c} {_name(n)} p={p:.3f} a={a:+.2f}{'*' if not np.isnan(t) else ''}"
            if not np.isnan(a) else f"#{c} {_name(n)} p={p:.3f}{'*' if not np.isnan(t) else ''}"
            for c, n, p, a, t in zip(student["concept"], student["name"], student["prob"],
                                     student["attribution"], student["teacher_rank"])))
        if res.has_teacher:
            teacher = frame[frame["teacher_rank"].notna()].sort_values("teacher_rank")
            lines.append("      teacher  " + ("  ".join(
                f"#{c} {_name(n)} s={s:.3g}" for c, n, s in
                zip(teacher["concept"], teacher["name"], teacher["teacher_score"]))
                or "(no labels)"))
    if max_tokens is not None and len(res.tokens) > max_tokens:
        lines.append(f"... {len(res.tokens) - max_tokens} more tokens")
    return "\n".join(lines)


def _tok(text: str | float | None) -> str:
    if not isinstance(text, str):  # the last token has no next token (None, or NaN in pandas)
        return "-"
    shown = repr(text)
    return shown if len(shown) <= 14 else shown[:13] + "…"


def _name(name: str | None) -> str:
    if not name:
        return ""
    return name if len(name) <= NAME_WIDTH else name[:NAME_WIDTH - 1] + "…"


def _num(x: float, fmt: str = "+.3f", width: int = 7) -> str:
    return f"{'-':>{width}}" if x is None or np.isnan(x) else format(format(x, fmt), f">{width}")
