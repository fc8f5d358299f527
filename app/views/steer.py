"""Steer: default and steered generations side by side, streamed, with the steered concept's
prediction rate per token, metrics, spec save/load and a strength sweep."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import catalogue_view as cv
from app import highlight, plots
from app import steer_logic as sl
from app.resources import model_in_use, piece

STEER_DEFAULTS = {"steer_prompt": "The", "steer_op": "scale", "steer_strength": 8.0,
                  "steer_positions": "all", "steer_max_new": 40, "steer_temperature": 0.8,
                  "steer_top_p": 0.95, "steer_seed": 0, "steer_search": ""}


def _defaults() -> None:
    for key, value in STEER_DEFAULTS.items():
        st.session_state.setdefault(key, value)


def _load_spec(upload) -> None:
    if upload is None:
        return
    edit = sl.edit_from_json(upload.getvalue().decode("utf-8", errors="replace"))
    st.session_state.update(steer_concept=edit.concept, steer_op=edit.op,
                            steer_strength=float(edit.strength),
                            steer_positions=edit.positions if isinstance(edit.positions, str)
                            else ",".join(map(str, edit.positions)))


def _picker(ctx, n_concepts: int) -> int:
    names = cv.concept_names(ctx.run)
    query = st.text_input("Search concepts", key="steer_search",
                          help="words in a concept's name or top tokens, or its id")
    options = cv.search_ids(ctx.run, query, n_concepts)
    chosen = st.session_state.get("steer_concept")
    if chosen is not None and not 0 <= int(chosen) < n_concepts:
        st.session_state.pop("steer_concept")
        raise ValueError(f"concept {chosen} does not exist: this model has concepts 0 to "
                         f"{n_concepts - 1}; pick one in the list")
    if chosen is not None and chosen not in options:
        options = [int(chosen), *options]
    if not options:
        st.warning(f"no concept matches {query!r}; clear the search")
        options = list(range(min(n_concepts, 50)))
    return st.selectbox("Concept", options, key="steer_concept",
                        format_func=lambda c: f"{c}: {names.get(c, '')}".rstrip(": "))


def _positions(text: str) -> str | list[int]:
    if text in sl.POSITIONS:
        return text
    try:
        return [int(p) for p in text.replace(" ", "").split(",") if p]
    except ValueError:
        raise ValueError(f"positions {text!r}: use all, prompt, generated, or token indices "
                         "like 0,3,5") from None


def _controls(ctx, model) -> tuple[sl.Edit, sl.Sampling, str]:
    left, right = st.columns([3, 2])
    with left:
        prompt = st.text_area("Prompt", key="steer_prompt", height=90)
        concept = _picker(ctx, int(model.cfg.n_concepts))
        op = st.selectbox("Operation", sl.available_ops(), key="steer_op")
        lo, hi = (-10.0, 10.0) if op == "scale" else (0.0, 10.0)
        st.session_state["steer_strength"] = min(hi, max(lo, st.session_state["steer_strength"]))
        strength = st.slider("Strength", lo, hi, step=0.5, key="steer_strength",
                             help="scale: multiply the concept's predicted logit (the paper's "
                                  "method). A negative logit times a positive factor moves "
                                  "further out of the top-k; a concept acts only in the top-k.")
        pos = st.text_input("Positions", key="steer_positions",
                            help="all, prompt, generated, or token indices (0,3,5)")
    with right:
        n_new = st.slider("New tokens", 1, sl.MAX_NEW_TOKENS, key="steer_max_new")
        temp = st.slider("Temperature (0 = greedy)", 0.0, 2.0, step=0.05, key="steer_temperature")
        top_p = st.slider("Top-p", 0.05, 1.0, step=0.05, key="steer_top_p")
        seed = st.number_input("Seed", 0, 2**31 - 1, step=1, key="steer_seed")
    edit = sl.Edit(concept=int(concept), op=op, strength=float(strength),
                   positions=_positions(pos))
    sampling = sl.Sampling(max_new_tokens=int(n_new), temperature=float(temp),
                           top_p=float(top_p), seed=int(seed))
    return edit, sampling, prompt


def _generate(ctx, model, edit: sl.Edit, sampling: sl.Sampling, prompt: str) -> None:
    ids = sl.encode_prompt(model.tokenizer, prompt, int(model.cfg.n_ctx))
    scorer = piece(ctx.run, "baseline") if ctx.run.has("baseline") else None
    result = {"prompt": prompt, "edit": edit, "samples": {}}
    cols = dict(zip(("default", "steered"), st.columns(2)))
    with model_in_use(ctx.run):
        for name, e in (("default", None), ("steered", edit)):
            with cols[name]:
                st.markdown(f"**{name.capitalize()}**")
                box, text, new = st.empty(), "", []
                for token, text in sl.stream_text(model, ids, sampling, e):
                    new.append(token)
                    box.markdown(f"{prompt}**{text}**")
            all_ids = ids[0].tolist() + new
            result["samples"][name] = {
                "ids": all_ids, "text": text,
                "trace": sl.concept_trace(model, all_ids, ids.shape[1], edit.concept),
                "metrics": sl.sample_metrics(model, all_ids, ids.shape[1], edit.concept,
                                             scorer)}
    st.session_state["steer_result"] = result
    st.rerun()  # redraw with highlights and metrics


def _show_result(result: dict) -> None:
    edit = result["edit"]
    st.caption(f"Highlight: probability the unsteered student gives concept {edit.concept} "
               "when it reads each generated token (underlined: in its top-k).")
    cols = st.columns(2)
    for col, (name, sample) in zip(cols, result["samples"].items()):
        with col:
            st.markdown(f"**{name.capitalize()}**")
            trace = sample["trace"]
            html = highlight.highlight_tokens([result["prompt"], *trace.text.tolist()],
                                              [0.0, *trace.prob.tolist()],
                                              [False, *trace.in_topk.tolist()])
            st.html(f'<div class="cocomix-sample" data-name="{name}">{html}</div>')
    table = pd.DataFrame({name: s["metrics"] for name, s in result["samples"].items()}).T
    st.dataframe(table, width="stretch")


def _sweep(ctx, model, edit: sl.Edit, sampling: sl.Sampling, prompt: str) -> None:
    ids = sl.encode_prompt(model.tokenizer, prompt, int(model.cfg.n_ctx))
    scorer = piece(ctx.run, "baseline") if ctx.run.has("baseline") else None
    bar = st.progress(0.0, text="Sweeping strengths ...")
    short = sl.Sampling(**{**sampling.__dict__, "max_new_tokens": min(24, sampling.max_new_tokens)})
    with model_in_use(ctx.run):
        rows = sl.sweep(model, ids, edit.concept, sl.default_strengths(edit.op), short, edit.op,
                        scorer, progress=lambda f: bar.progress(f, text="Sweeping strengths"))
    bar.empty()
    st.session_state["steer_sweep"] = (edit.concept, edit.op, rows)


def render(ctx) -> None:
    st.header("Steer")
    _defaults()
    model = piece(ctx.run, "student")
    with st.expander("Load a saved spec"):
        st.file_uploader("Spec JSON", type=["json"], key="steer_upload",
                         on_change=lambda: _load_spec(st.session_state.get("steer_upload")))
    edit, sampling, prompt = _controls(ctx, model)
    go_col, save_col, sweep_col = st.columns(3)
    clicked = go_col.button("Generate", type="primary", key="steer_go")
    save_col.download_button("Save spec (JSON)", sl.edit_to_json(edit), "steer_spec.json",
                              mime="application/json", key="steer_save")
    swept = sweep_col.button("Strength sweep", key="steer_sweep_go")
    if clicked:
        _generate(ctx, model, edit, sampling, prompt)
    if swept:
        with st.spinner("Generating one sample per strength ..."):
            _sweep(ctx, model, edit, sampling, prompt)
    if "steer_result" in st.session_state:
        _show_result(st.session_state["steer_result"])
    if "steer_sweep" in st.session_state:
        concept, op, rows = st.session_state["steer_sweep"]
        st.plotly_chart(plots.sweep_plot(rows, title=f"Strength sweep: {op} concept {concept}"),
                        key="sweep_plot")
