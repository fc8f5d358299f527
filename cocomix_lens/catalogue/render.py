"""Plain-text views of the catalogue for terminals: a concept card and concept tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from cocomix_lens.catalogue.contexts import mark

if TYPE_CHECKING:
    from cocomix_lens.catalogue.store import ConceptRecord

CONTEXT_WIDTH = 90
HEADINGS = {"teacher": "top contexts by teacher SAE activation",
            "student": "top contexts by student concept logit"}


def concept_card(rec: ConceptRecord, n_contexts: int = 5) -> str:
    """A multi-line description of one concept."""
    i = rec.info
    lines = [f"concept {rec.id}  {i['name']!r}{'  [dead]' if i['dead'] else ''}",
             f"  labels      {_pct(i['label_density'])} of training tokens "
             f"({i['label_count']:,})",
             f"  predicted   {_pct(i['prediction_density'])} of validation tokens (student "
             f"top-k); SAE active on {_pct(i['act_density'])}",
             f"  logit       mean {i['logit_mean']:+.3f}  std {i['logit_std']:.3f}  "
             f"max {i['max_logit']:+.3f}",
             f"  fires on    {_words(i['fires_on'])}",
             f"  promotes    teacher (SAE decoder): {_words(i['teacher_tokens'])}",
             f"              student (W_comp):      {_words(i['student_tokens'])}"]
    meta = rec.metadata
    if len(meta):
        parts = [f"{k}={v} ({s:.0%} of its labels, lift {lift:.1f}x)"
                 for k, v, s, lift in zip(meta["key"], meta["value"], meta["share"],
                                          meta["lift"])]
        lines.append(f"  metadata    {'; '.join(parts)}")
    if i.get("truth"):  # older catalogues have no truth column
        lines.append(f"  truth       {i['truth']} (F1 {i['truth_f1']:.2f}, known latents)")
    for source, heading in HEADINGS.items():
        rows = rec.contexts[rec.contexts["source"] == source].head(n_contexts)
        lines.append(f"  {heading}:" if len(rows) else f"  {heading}: none")
        for value, a, b, c in zip(rows["value"], rows["left"], rows["token"], rows["right"]):
            lines.append(f"    {value:8.3f}  {_clip(mark(a, b, c))}")
    return "\n".join(lines)


def concepts_table(df: pd.DataFrame, columns: list[str] | None = None) -> str:
    """A concepts frame (e.g. a search result) as an aligned text table."""
    if not len(df):
        return "(no concepts)"
    view = (df[columns] if columns else df).reset_index()  # the id as a column: one header
    text = view.select_dtypes("object").columns
    view[text] = view[text].fillna("-")
    formatters: dict[str, Any] = {}
    for col in view.columns:
        first = view[col].iloc[0]
        if isinstance(first, (list, tuple)) or hasattr(first, "tolist") and col.endswith(
                ("tokens", "fires_on")):
            formatters[col] = lambda v: _words(v, 4)
        elif col.endswith("density") or col == "share":
            formatters[col] = _pct
    return view.to_string(formatters=formatters, justify="left", index=False)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _words(tokens: Any, n: int = 8) -> str:
    words = [repr(str(t).strip()) if str(t).strip() else repr(str(t)) for t in list(tokens)[:n]]
    return ", ".join(words) if words else "-"


def _clip(text: str, width: int = CONTEXT_WIDTH) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]
