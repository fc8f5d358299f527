"""Inspect: a text -> heatmap of the student's concepts per token, the teacher's attribution
map beside it with the agreement per token, and the concept-slot ablation effect."""

from __future__ import annotations

import streamlit as st

from app import catalogue_view as cv
from app import plots
from app.inspect_view import default_text, inspect_text
from app.nav import go
from app.resources import model_in_use, piece


def _clicked_concept(event) -> int | None:
    """The concept of a clicked heatmap cell (its y label is 'id: name')."""
    points = getattr(getattr(event, "selection", None), "points", None) or []
    for p in points:
        label = str(p.get("y", ""))
        if label.split(":")[0].isdigit():
            return int(label.split(":")[0])
    return None


def render(ctx) -> None:
    st.header("Inspect")
    run = ctx.run
    if "inspect_text" not in st.session_state:
        st.session_state["inspect_text"] = default_text(run)
    text = st.text_area("Text", key="inspect_text", height=90)
    for name in ("student", "teacher", "sae"):
        if name == "student" or run.has(name):
            piece(run, name)  # load (once, with a spinner) before taking the lock
    names = cv.concept_names(run)
    with st.spinner("Reading the text ..."), model_in_use(run):
        view = inspect_text(run, text)
    label = lambda cs: [names.get(c, "") for c in cs]
    left, right = st.columns(2)
    with left:
        event = st.plotly_chart(
            plots.concept_heatmap(view.words, view.student_concepts,
                                  label(view.student_concepts), view.student),
            key="inspect_heatmap", on_select="rerun", selection_mode="points")
        clicked = _clicked_concept(event)
        if clicked is not None:
            go("concepts", clicked)
            st.rerun()
    with right:
        if view.has_teacher:
            st.plotly_chart(plots.concept_heatmap(
                view.words, view.teacher_concepts, label(view.teacher_concepts), view.teacher,
                title="Teacher attribution labels", value="score"), key="inspect_teacher")
        else:
            st.info("This run has no teacher and SAE: no attribution map to compare.")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(plots.token_bars(view.words, view.tokens.precision_at_k,
                                         "Agreement with the teacher per token", "precision@k"),
                        key="inspect_agreement")
    with right:
        st.plotly_chart(plots.token_bars(view.words, view.tokens.delta_zero,
                                         "Ablating the concept slot c_t: Δ log p(next token)",
                                         "Δ log p"), key="inspect_ablation")
    st.dataframe(view.table(names), hide_index=True, width="stretch")
    st.markdown("**Open a concept** (or click a cell of the heatmap)")
    shown = view.student_concepts
    cols = st.columns(min(6, len(shown)) or 1)
    for i, c in enumerate(shown):
        cols[i % len(cols)].button(f"{c}: {names.get(c, '')}".rstrip(": "), key=f"open_{c}",
                                   on_click=go, args=("concepts", c))
