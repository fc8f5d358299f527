"""Concepts: the catalogue table with explanations, searchable by meaning and by example, and
one concept's feature card (explanation and its detection score, contexts with the active
token marked, quantile-binned contexts, activation and logit histograms, promoted and
suppressed tokens, cosine neighbours, measured steering, metadata lift, JSON export)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import catalogue_view as cv
from app import highlight, plots
from app.nav import go


def _close() -> None:
    st.session_state.pop("concept", None)


def _steer_with(run, concept: int) -> None:
    """Open Steer on `concept` with its best measured setting (library `best_setting`)."""
    from app.steer_logic import prefill

    st.session_state.update(prefill(run, concept))
    go("steer", concept)


def _open_selected() -> None:
    """The concepts table's row click: open that concept's card."""
    rows = st.session_state["concepts_table"].selection.rows
    ids = st.session_state.get("_concepts_ids", [])
    if rows and rows[0] < len(ids):
        go("concepts", ids[rows[0]])


def _table(ctx) -> None:
    cat = cv.catalogue(ctx.run)
    left, right = st.columns([3, 1])
    query = left.text_input("Search by meaning (explanations, ground truth, tokens, contexts; "
                            "word forms folded)", key="concepts_query")
    sort = right.selectbox("Sort by", list(cv.SORTS), key="concepts_sort")
    table = cv.table(cat, query, sort)
    if query.strip() and len(table):
        st.markdown("\n".join(
            f"{i + 1}. concept **{c}**: {row['explanation'] or row['name']}"
            + (f" (detection AUROC {row['detection AUROC']:.2f})"
               if row["detection AUROC"] == row["detection AUROC"] else "")
            for i, (c, row) in enumerate(table.head(3).iterrows())))
    st.caption(f"{len(table)} of {len(cat)} concepts · "
               f"{int(cat.concepts['dead'].sum())} dead · click a row to open it")
    # the click is handled in a callback (before the page's widgets exist): switching page
    # from the script body would set the sidebar's already drawn "page" widget
    st.session_state["_concepts_ids"] = [int(c) for c in table.index]
    st.dataframe(table, width="stretch", height=480, on_select=_open_selected,
                 selection_mode="single-row", key="concepts_table")
    c1, c2 = st.columns([1, 3])
    c1.number_input("Concept id", 0, max(len(cat) - 1, 0), step=1, key="concepts_open_id")
    c2.button("Open", key="concepts_open", on_click=lambda: go(
        "concepts", st.session_state["concepts_open_id"]))


def _coverage(ctx) -> None:
    table = cv.coverage_table(ctx.run)
    if table is None:
        return
    with st.expander("Ground truth: how well the concepts recover the world's variables"):
        st.caption("coverage = share of a variable's values whose best concept has F1 ≥ 0.8 "
                   "(mean best F1 in brackets; sentence-scoped variables per sentence). The "
                   "linear probe, fitted on the SAE's input, is the ceiling a linear read "
                   "reaches.")
        st.dataframe(table, width="stretch", key="concepts_coverage")


def _by_example(ctx) -> None:
    with st.expander("Search by example: concepts the student predicts more on your text"):
        text = st.text_area("One text per line", key="concepts_example")
        texts = [t for t in (text or "").splitlines() if t.strip()]
        if texts:
            found = cv.by_example(ctx.run, texts)
            st.caption("contrast = the concept's peak logit in the text minus its mean on "
                       "validation text, in stds of that logit")
            st.dataframe(found.round(3), width="stretch", key="concepts_example_table")


def _contexts(rec, source: str) -> None:
    rows = rec.contexts[rec.contexts["source"] == source]
    if not len(rows):
        st.caption("no contexts")
        return
    lines = [f"<li>{highlight.context_html(a, b, c)} "
             f"<span style='color:#999'>({v:.3g})</span></li>"
             for a, b, c, v in zip(rows["left"], rows["token"], rows["right"], rows["value"])]
    st.html("<ol style='font-family: monospace; font-size: 0.85em'>" + "".join(lines) + "</ol>")


def _tokens(rec) -> pd.DataFrame:
    cols = {}
    for name, key in (("teacher (SAE decoder)", "teacher_tokens"),
                      ("student (compressor row)", "student_tokens")):
        toks = getattr(rec, key, None)
        toks = [] if toks is None else list(toks)
        cols[name] = [repr(str(t))[1:-1] for t in toks]
    n = max((len(v) for v in cols.values()), default=0)
    return pd.DataFrame({k: v + [""] * (n - len(v)) for k, v in cols.items()})


def _concept(ctx, c: int) -> None:
    rec = cv.record(ctx.run, c)
    top = st.columns([3, 2, 1])
    top[0].subheader(f"Concept {c}: {rec.name}" + (" (dead)" if rec.dead else ""))
    top[1].button("Steer with this concept", key="concept_steer", type="primary",
                  on_click=_steer_with, args=(ctx.run, c),
                  help="opens Steer with the best setting measured for this concept on this "
                       "run (else the add op's default), labelled with its source")
    top[2].button("All concepts", key="concept_back", on_click=_close)
    m = st.columns(5)
    m[0].metric("prediction density", f"{rec.prediction_density:.2%}")
    m[1].metric("label density", f"{rec.label_density:.2%}")
    m[2].metric("SAE density", f"{rec.act_density:.2%}")
    m[3].metric("logit mean ± std", f"{rec.logit_mean:.2f} ± {rec.logit_std:.2f}")
    m[4].metric("max logit", f"{rec.max_logit:.2f}")
    left, right = st.columns(2)
    with left:
        st.markdown("**Max-activating contexts: teacher view** (SAE activation)")
        _contexts(rec, "teacher")
    with right:
        st.markdown("**Max-activating contexts: student view** (predicted concept logit)")
        _contexts(rec, "student")
    left, mid, right = st.columns([2, 3, 3])
    with left:
        st.markdown("**Top output tokens**")
        st.dataframe(_tokens(rec), hide_index=True, width="stretch")
    with mid:
        st.plotly_chart(plots.lift_bar(cv.lift(rec)), key="concept_lift")
    with right:
        values = cv.concept_logits(ctx.run, c)
        fig = plots.logit_histogram(values, title="Predicted logit on validation tokens")
        st.plotly_chart(fig, key="concept_logits")


def _card(ctx, c: int) -> None:
    """The feature card's Neuronpedia fields beyond the record's."""
    from cocomix_lens.data.files import strict_json

    card = cv.card(ctx.run, c)
    if card.explanation:
        st.markdown(f"**Explanation:** {card.explanation}  \n"
                    f"detection AUROC {card.detection:.2f} (its words predicting, on held-out "
                    "sentences, where the SAE latent fires; 0.5 = chance)")
    cols = st.columns(4)
    for col, r, side in ((cols[0], "teacher", "top"), (cols[1], "teacher", "bottom"),
                         (cols[2], "student", "top"), (cols[3], "student", "bottom")):
        pairs = (card.top_logits if side == "top" else card.bottom_logits)[r]
        col.plotly_chart(plots.effect_bars(pairs, f"{r}: {side} logit effects"),
                         key=f"concept_effects_{r}_{side}")
    cols = st.columns(3)
    act = card.activation_histogram["teacher"]
    cols[0].plotly_chart(plots.binned_histogram(act["counts"], act["edges"],
                                                "SAE activation (active tokens)", "activation"),
                         key="concept_act_hist")
    for col, r in ((cols[1], "teacher"), (cols[2], "student")):
        h = card.logit_histogram[r]
        col.plotly_chart(plots.binned_histogram(h["counts"], h["edges"],
                                                f"{r}: direct logits over the vocabulary",
                                                "logit"), key=f"concept_vocab_hist_{r}")
    left, right = st.columns(2)
    for col, r in ((left, "teacher"), (right, "student")):
        with col:
            st.markdown(f"**Contexts by quantile bin: {r} view** (0 = lowest)")
            rows = card.quantile_contexts[r]
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                         key=f"concept_quantiles_{r}")
            st.markdown(f"**Nearest concepts: {r}** (cosine of "
                        f"{'SAE decoder' if r == 'teacher' else 'compressor'} rows)")
            st.dataframe(pd.DataFrame(card.neighbours[r]), hide_index=True, width="stretch",
                         key=f"concept_neighbours_{r}")
    if card.steering:
        st.markdown("**Measured steering** (the run's steering results)")
        st.json(card.steering, expanded=False)
    st.download_button("Card as JSON", strict_json(card.to_json(), indent=1),
                       file_name=f"concept-{c}.json", mime="application/json",
                       key="concept_json")


def render(ctx) -> None:
    st.header("Concepts")
    if ctx.concept is None:
        _table(ctx)
        _by_example(ctx)
        _coverage(ctx)
    else:
        _concept(ctx, ctx.concept)
        _card(ctx, ctx.concept)
