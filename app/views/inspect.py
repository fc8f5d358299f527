"""Inspect: a text -> heatmap of the student's concepts per token, the teacher's attribution
labels beside it with the agreement per token, and the concept-slot ablation effect."""

from __future__ import annotations

import streamlit as st

from app import catalogue_view as cv
from app import plots
from app.inspect_view import inspect_text
from app.resources import model_in_use, piece
from app.shell import go

DEFAULT_TEXT = "The ship sailed out of the harbor before the storm."


def render(ctx) -> None:
    st.header("Inspect")
    run = ctx.run
    st.session_state.setdefault("inspect_text", DEFAULT_TEXT)
    text = st.text_area("Text", key="inspect_text", height=90)
    model = piece(run, "student")
    has_teacher = run.has("teacher") and run.has("sae")
    teacher = (piece(run, "teacher"), piece(run, "sae")) if has_teacher else None
    with st.spinner("Reading the text ..."), model_in_use(run):
        view = inspect_text(model, text, teacher)
    names = cv.concept_names(run)
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(plots.concept_heatmap(view.tokens, view.concepts,
                                              [names.get(c, "") for c in view.concepts],
                                              view.probs), key="inspect_heatmap")
    with right:
        if teacher is None:
            st.info("This run has no teacher and SAE: no attribution map to compare.")
        st.plotly_chart(plots.token_bars(view.tokens, view.agreement,
                                         "Agreement with the teacher's labels", "precision@k"),
                        key="inspect_agreement")
    st.plotly_chart(plots.token_bars(view.tokens, view.ablation,
                                     "Ablating the concept slot: Δ log p(next token)",
                                     "Δ log p"), key="inspect_ablation")
    st.dataframe(view.table(names), hide_index=True, width="stretch")
    st.markdown("**Open a concept**")
    cols = st.columns(min(6, len(view.concepts)) or 1)
    for i, c in enumerate(view.concepts):
        cols[i % len(cols)].button(f"{c}: {names.get(c, '')}".rstrip(": "), key=f"open_{c}",
                                   on_click=go, args=("concepts", c))
