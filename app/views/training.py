"""Training: loss curves of every objective by tokens, NTP vs CoCoMix, concept accuracy,
throughput, SAE quality and the pipeline's stage times; and the study of the paper's claims
(`cocomix-lens study`) when the run has one."""

from __future__ import annotations

import streamlit as st

from app import plots
from app import training_data as td
from report import study as study_results


def render(ctx) -> None:
    run = ctx.run
    st.header("Training")
    frame = td.metrics_frame(run.metrics)
    summary = run.summary if run.has("summary") else {}
    table = td.final_table(summary)
    if not table.empty:
        st.dataframe(table, hide_index=True, width="stretch")
    left, right = st.columns(2)
    with left:
        sel = td.select(frame, ("loss", "ntp", "concept", "kd", "concept_ce"))
        st.plotly_chart(plots.curves(sel[sel.split == "train"], "Every objective (train)",
                                     "loss"), key="objectives")
    with right:
        pair = td.select(frame, ("val_loss",), stages=("ntp", "cocomix", "train"))
        st.plotly_chart(plots.curves(pair, "NTP vs CoCoMix: val loss", "val loss"),
                        key="ntp_vs_cocomix")
    left, right = st.columns(2)
    with left:
        acc = td.select(frame, td.ACCURACY)
        base = summary.get("concept_baselines") or {}
        fig = plots.curves(acc, "Concept accuracy vs the teacher's labels", "accuracy")
        st.plotly_chart(plots.with_baselines(fig, {
            k.replace("_", " "): v for k, v in base.items()
            if k in ("frequency_top1", "chance_top1") and v is not None}), key="accuracy")
    with right:
        tput = td.select(frame, ("tokens_per_s",))
        st.plotly_chart(plots.curves(tput, "Throughput", "tokens / s"), key="throughput")
    left, right = st.columns(2)
    with left:
        st.subheader("SAE quality")
        quality = td.sae_quality(summary)
        if quality:
            cols = st.columns(3)
            for i, (name, value) in enumerate(quality.items()):
                shown = f"{value:.3g}" if isinstance(value, float) else str(value)
                cols[i % 3].metric(name, shown)
        else:
            st.info("This run has no SAE (a 'cocomix-lens train' run).")
    with right:
        st.plotly_chart(plots.stage_bars(td.stage_times(summary)), key="stages")
    _study(ctx)


def _study(ctx) -> None:
    """Verdicts, val-loss curves with seed bands, token savings and ablations of study.json;
    or how to make a study. A damaged study.json is an error here, not for the whole page."""
    st.subheader("Study: which of the paper's claims hold at this scale")
    try:
        doc = ctx.run.study if ctx.run.has("study") else None
    except ValueError as err:
        st.error(str(err))
        return
    if doc is None:
        make = study_results.MAKE.format(run=ctx.run.path)
        st.info(f"This run has no study yet. Make one with `{make}` (trains NTP, CoCoMix and "
                "every ablation per seed on the run's teacher, SAE and labels), then reload."
                if ctx.run.kind == "pipeline" else
                "A study needs a pipeline run (`cocomix-lens pipeline --out DIR`); then "
                f"`{study_results.MAKE.format(run='DIR')}`.")
        return
    st.caption(td.study_caption(doc))
    verdicts, ablations = td.study_tables(doc)
    st.table(verdicts.set_index("claim"))  # a static table: the long texts wrap, none is cut
    figs = study_results.figures(doc)
    st.plotly_chart(figs["curves"].update_layout(height=560), key="study_curves")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(figs["savings"], key="study_savings")
    with right:
        st.markdown("**Ablations**: final validation loss per arm (Δ: paired gap to cocomix)")
        # tall enough for every arm without a scroll bar (35 px a row and the header)
        st.dataframe(ablations, hide_index=True, width="stretch", key="study_ablations",
                     height=35 * (len(ablations) + 1) + 3)
