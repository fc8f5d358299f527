"""Plain-text views of the catalogue for terminals: a concept card and concept tables."""

from __future__ import annotations

from typing import Any

import pandas as pd

# A `ConceptRecord` comes in typed Any: catalogue/store.py imports this module, and an import
# back, even for type checkers only, would close a circle (tests/test_import_rules.py).

CONTEXT_WIDTH = 90
EXPLANATION_WIDTH = 64
HEADINGS = {"teacher": "top contexts by teacher SAE activation",
            "student": "top contexts by student concept logit"}


def concept_card(rec: Any, n_contexts: int = 5, names: list[str] | None = None,
                 steering: dict[str, Any] | None = None) -> str:
    """A multi-line description of one concept: its feature card (catalogue.card) as text."""
    from cocomix_lens.catalogue.card import feature_card

    card = feature_card(rec, names, steering)
    i = rec.info
    lines = [f"concept {rec.id}  {i['name']!r}{'  [dead]' if i['dead'] else ''}"]
    if card.explanation:
        lines.append(f"  explains    {card.explanation}  (detection AUROC "
                     f"{_num(card.detection)} on {int(i.get('detection_units', 0))} held-out "
                     "sentences)")
    lines += [f"  labels      {_pct(i['label_density'])} of training tokens "
              f"({i['label_count']:,})",
              f"  predicted   {_pct(i['prediction_density'])} of validation tokens (student "
              f"top-k); SAE active on {_pct(i['act_density'])}",
              f"  logit       mean {i['logit_mean']:+.3f}  std {i['logit_std']:.3f}  "
              f"max {i['max_logit']:+.3f}",
              f"  fires on    {_words(i['fires_on'])}"]
    for r, label in (("teacher", "teacher (SAE decoder):"), ("student", "student (W_comp):")):
        lines.append(f"  promotes    {label:<23}{_effects(card.top_logits[r])}")
        if card.bottom_logits[r]:
            lines.append(f"  suppresses  {label:<23}{_effects(card.bottom_logits[r])}")
    meta = rec.metadata
    if len(meta):
        parts = [f"{k}={v} ({s:.0%} of its labels, lift {lift:.1f}x)"
                 for k, v, s, lift in zip(meta["key"], meta["value"], meta["share"],
                                          meta["lift"])]
        lines.append(f"  metadata    {'; '.join(parts)}")
    if card.truth:
        lines.append(f"  truth       {card.truth} (F1 {card.truth_f1:.2f}, known latents)")
    for r in ("teacher", "student"):
        if card.neighbours[r]:
            near = ", ".join(f"{n['concept']} {n['name']!r} ({n['cosine']:.2f})" if n["name"]
                             else f"{n['concept']} ({n['cosine']:.2f})"
                             for n in card.neighbours[r][:3])
            lines.append(f"  neighbours  {r}: {near}")
    hist = card.activation_histogram["teacher"]
    if hist["counts"]:
        lines.append(f"  activation  {_spark(hist['counts'])}  {hist['edges'][0]:.2f} .. "
                     f"{hist['edges'][-1]:.2f} (SAE, {sum(hist['counts'])} active tokens)")
    for source, heading in HEADINGS.items():
        rows = card.contexts[source][:n_contexts]
        lines.append(f"  {heading}:" if rows else f"  {heading}: none")
        lines += [f"    {c['value']:8.3f}  {_clip(c['text'])}" for c in rows]
        binned = card.quantile_contexts[source]
        if binned:
            lines.append(f"  {source} contexts by quantile bin (0 = lowest):")
            lines += [f"    q{c['bin']} {c['value']:8.3f}  {_clip(c['text'])}" for c in binned]
    if card.steering.get("screen"):
        r = card.steering["screen"]
        lines.append(f"  steering    screened: clear={r.get('clear')} (steering.json)")
    return "\n".join(lines)


def _effects(pairs: list[tuple[str, float]], n: int = 8) -> str:
    return ", ".join(f"{w.strip() or repr(w)} {v:+.2f}" for w, v in pairs[:n]) or "-"


def _num(x: float) -> str:
    return "n/a" if x != x else f"{x:.2f}"


def _spark(counts: list[float]) -> str:
    bars = " ▁▂▃▄▅▆▇█"
    top = max(max(counts), 1)
    return "".join(bars[min(int(round(8 * c / top)), 8)] for c in counts)


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
        elif col == "explanation":
            formatters[col] = lambda v: _clip(str(v), EXPLANATION_WIDTH, tail=False)
        elif col in ("detection", "contrast", "truth_f1"):
            formatters[col] = _num
    return view.to_string(formatters=formatters, justify="left", index=False)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _words(tokens: Any, n: int = 8) -> str:
    words = [repr(str(t).strip()) if str(t).strip() else repr(str(t)) for t in list(tokens)[:n]]
    return ", ".join(words) if words else "-"


def _clip(text: str, width: int = CONTEXT_WIDTH, tail: bool = True) -> str:
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1):] if tail else text[:width - 1] + "…"
