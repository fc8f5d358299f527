"""Steer: default and steered generations side by side, streamed, with the steered concept's
prediction rate per token, the steering scores of the shown samples, spec save/load (a loaded
spec's every edit applies: the first in the controls, the others listed) and a strength
sweep."""

from __future__ import annotations

import streamlit as st

from app import catalogue_view as cv
from app import highlight, plots
from app import steer_logic as sl
from app.resources import model_in_use, piece
from app.views import steer_toward

_SAMPLING = sl.Sampling()
STEER_DEFAULTS = {"steer_prompt": "The", "steer_op": "add",
                  "steer_strength": sl.OPS["add"].default,
                  "steer_positions": "all", "steer_max_new": _SAMPLING.max_new_tokens,
                  "steer_temperature": _SAMPLING.temperature,
                  "steer_top_p": _SAMPLING.top_p, "steer_seed": _SAMPLING.seed,
                  "steer_search": "", "steer_sweep_metric": "student_prob"}


SWEEP_CI = "95% bootstrap CI"


def _defaults(run) -> None:
    """First visit: a concept from the URL starts at its best measured setting."""
    ss = st.session_state
    if "steer_op" not in ss and ss.get("steer_concept") is not None:
        ss.update(sl.prefill(run, int(ss["steer_concept"])))
    for key, value in STEER_DEFAULTS.items():
        ss.setdefault(key, value)


def _load_spec(cfg) -> None:
    upload = st.session_state.get("steer_upload")
    if upload is None:
        return
    from cocomix_lens.steering import SteeringSpec, validate_spec

    try:
        # capped and checked against the student before any control changes: one line, no box
        spec = SteeringSpec.from_json(upload.getvalue(), name=f"spec {upload.name}")
        validate_spec(spec, cfg)
        apply_spec(spec)
    except ValueError as err:
        st.session_state["_steer_note"] = f"could not load the spec: {err}"


def apply_spec(spec) -> None:
    """Put a (validated) spec into the controls: its shown edit in them, the others beside."""
    st.session_state.update(sl.spec_controls(spec))
    st.session_state.pop("steer_setting", None)
    st.session_state["steer_search"] = ""
    # the controls hold one edit; the others apply beside it (_loaded_edits)
    st.session_state["steer_loaded"] = sl.loaded_edits(spec)
    # an add edit keeps the logit std it was saved with (while its concept is picked)
    shown = spec.edits[sl.shown_edit(spec)]
    st.session_state["steer_loaded_std"] = (
        {shown.concept: shown.std} if shown.op == "add" and shown.std is not None else {})


def _drop_loaded() -> None:
    st.session_state["steer_loaded"] = ()


def _loaded_edits() -> tuple:
    """A loaded spec's edits (None: the controls' one); the others are listed and apply."""
    loaded = st.session_state.get("steer_loaded", ())
    others = [e for e in loaded if e is not None]
    if others:
        st.markdown(f"**{len(others)} more edit(s) from the loaded spec**, applied with the "
                    "one above (the library's order: scale, add, ban, force, set, vector; "
                    "edits of one op in spec order):")
        st.markdown("\n".join(f"- {sl.describe_edit(e)}" for e in others))
        st.button("Drop these edits", key="steer_drop_loaded", on_click=_drop_loaded)
    return loaded


def _use_measured(run, concept: int) -> None:
    st.session_state.update(sl.prefill(run, concept))


def _setting_note(concept: int, op: str, strength: float) -> None:
    """Where the controls' setting comes from, while they still hold it."""
    setting = st.session_state.get("steer_setting")
    if setting is not None and setting[:3] == (concept, op, strength):
        st.caption(f"Setting: {op} {strength:g} ({sl.OPS[op].unit}), from {setting[3]}")


def _measured(ctx) -> None:
    """What `steer-eval --densest` measured on this run (make demo writes it), with a button
    that puts its edit into the controls."""
    if not ctx.run.has("steering"):
        return
    doc = ctx.run.steering
    passed = [r["concept"] for r in doc.get("screen", []) if r.get("clear")]
    with st.expander("Measured on this run: concepts that steer (steer-eval --densest)"):
        st.markdown(f"Screened the {len(doc.get('screen', []))} concepts the student predicts "
                    f"most often; **{len(passed)} steer** (both success measures clear of the "
                    f"unsteered run and a random control): {', '.join(map(str, passed))}.")
        if doc.get("concept") is None:
            return
        strength = float(doc["chosen"]["cocomix_add"])
        st.markdown(f"Concept **{doc['concept']}** (predicted on {doc['density']:.0%} of "
                    f"tokens, rank {doc['rank']}), add {strength:g} std; scored with steering "
                    f"off on {doc['settings']['samples']} samples per condition:")
        st.dataframe(sl.measured_table(doc), width="stretch", hide_index=True,
                     key="steer_measured")
        st.button(f"Use this edit: add {strength:g} std to concept {doc['concept']}",
                  key="steer_use_measured", on_click=_use_measured,
                  args=(ctx.run, int(doc["concept"])))


def _picker(ctx, n_concepts: int) -> int:
    names = cv.concept_names(ctx.run)
    query = st.text_input("Search concepts", key="steer_search",
                          help="words in a concept's name, tokens or contexts, or its id")
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


def _strength(op: str) -> float:
    entry = sl.OPS[op]
    what = f"{entry.label or entry.doc} ({entry.unit})" if entry.unit else entry.doc
    if entry.range is None:
        st.caption(f"No strength: {entry.doc}")
        return 0.0
    lo, hi = entry.range
    given = st.session_state["steer_strength"]
    st.session_state["steer_strength"] = min(hi, max(lo, given))
    if given != st.session_state["steer_strength"]:  # a loaded spec or measured edit: say so
        st.warning(f"strength {given:g} is outside {op}'s slider range [{lo:g}, {hi:g}]: "
                   f"this page uses {st.session_state['steer_strength']:g}; for {given:g}, run "
                   "the spec from Python or `cocomix-lens generate --steer SPEC`")
    return st.slider("Strength", lo, hi, step=0.5, key="steer_strength", help=what + (
        ". A negative logit times a factor > 1 moves further out of the top-k; a concept acts "
        "only once it is in the top-k (use add or force to promote a negative one)."
        if op == "scale" else ""))


def _controls(ctx, model) -> tuple:
    left, right = st.columns([3, 2])
    with left:
        prompt = st.text_area("Prompt", key="steer_prompt", height=90)
        concept = _picker(ctx, int(model.cfg.n_concepts))
        op = st.selectbox("Operation", sl.available_ops(), key="steer_op")
        strength = _strength(op)
        pos = st.text_input("Positions", key="steer_positions",
                            help="all, prompt, generated; new_tokens:4 (the first four "
                                 "new tokens, then the model goes on unsteered); sentences "
                                 "or new_sentences (the first slot of each sentence; "
                                 "new_sentences:3 the first three, from the prompt's end "
                                 "on); or token indices (0,3,5)")
        loaded = _loaded_edits()
        _setting_note(int(concept), op, float(strength))
    with right:
        n_new = st.slider("New tokens", 1, sl.MAX_NEW_TOKENS, key="steer_max_new")
        temp = st.slider("Temperature (0 = greedy)", 0.0, 2.0, step=0.05, key="steer_temperature")
        top_p = st.slider("Top-p", 0.05, 1.0, step=0.05, key="steer_top_p")
        seed = st.number_input("Seed", 0, 2**31 - 1, step=1, key="steer_seed")
    # add: strength in the concept's logit stds over validation tokens, as the CLI does,
    # unless a loaded spec gave this concept's std
    std = st.session_state.get("steer_loaded_std", {}).get(int(concept)) if op == "add" else None
    spec = sl.make_spec(op, int(concept), float(strength), pos, std=std,
                        loaded=loaded).resolve(ctx.run)
    sampling = sl.Sampling(max_new_tokens=int(n_new), temperature=float(temp),
                           top_p=float(top_p), seed=int(seed))
    return int(concept), op, spec, sampling, prompt


def _generate(ctx, model, concept: int, spec, sampling: sl.Sampling, prompt: str) -> None:
    ids = sl.encode_for_scoring(ctx.run, model, prompt, sampling.max_new_tokens)
    result = {"prompt": prompt, "concept": concept, "spec": spec, "samples": {}}
    cols = dict(zip(("default", "steered"), st.columns(2)))
    with model_in_use(ctx.run):
        for name, s in (("default", None), ("steered", spec)):
            with cols[name]:
                st.markdown(f"**{name.capitalize()}**")
                box, text, new = st.empty(), "", []
                for token, text in sl.stream_text(model, ids, sampling, s):
                    new.append(token)
                    box.markdown(f"{prompt}**{text}**")
            all_ids = ids[0].tolist() + new
            result["samples"][name] = {
                "ids": all_ids, "text": text,
                "trace": sl.concept_trace(model, all_ids, ids.shape[1], concept)}
        with st.spinner("Scoring the samples with steering off ..."):
            result["scores"] = sl.sample_scores(
                ctx.run, concept, {n: s["ids"] for n, s in result["samples"].items()},
                ids.shape[1])
    st.session_state["steer_result"] = result
    st.rerun()  # redraw with highlights and scores


def _show_result(result: dict) -> None:
    st.caption(f"Highlight: probability the unsteered student gives concept "
               f"{result['concept']} when it reads each generated token (underlined: in its "
               "top-k).")
    cols = st.columns(2)
    # one colour scale for both columns, so their highlights compare
    top = max([float(s["trace"].prob.max()) for s in result["samples"].values()
               if len(s["trace"])] + [1e-12])
    for col, (name, sample) in zip(cols, result["samples"].items()):
        with col:
            st.markdown(f"**{name.capitalize()}**")
            trace = sample["trace"]
            html = highlight.highlight_tokens([result["prompt"], *trace.text.tolist()],
                                              [0.0, *trace.prob.tolist()],
                                              [False, *trace.in_topk.tolist()], top=top)
            st.html(f'<div class="cocomix-sample" data-name="{name}">{html}</div>')
    st.markdown("**Steering scores of these samples** (read with steering off)")
    st.dataframe(result["scores"], width="stretch", key="steer_scores")


def _sweep(ctx, concept: int, op: str, sampling: sl.Sampling, prompt: str) -> None:
    model = piece(ctx.run, "student")
    sl.encode_prompt(model.tokenizer, prompt, int(model.cfg.n_ctx))  # the same checks
    for name in ("teacher", "sae", "baseline"):
        piece(ctx.run, name)  # loaded once, with a spinner, before the sweep's progress bar
    strengths = sl.default_strengths(op)
    bar = st.progress(0.0, text="Sweeping strengths ...")

    def progress(items, total, desc):
        for i, item in enumerate(items):
            bar.progress(i / max(len(strengths), 1), text=f"strength {item:g}")
            yield item

    with model_in_use(ctx.run):
        res, rows = sl.sweep(ctx.run, prompt, concept, op, strengths, sampling,
                             progress=progress)
    bar.empty()
    st.session_state["steer_sweep"] = (concept, op, rows, res.table())


def render(ctx) -> None:
    st.header("Steer")
    _defaults(ctx.run)
    model = piece(ctx.run, "student")
    with st.expander("Load a saved spec"):
        st.file_uploader("Spec JSON", type=["json"], key="steer_upload", on_change=_load_spec,
                         args=(model.cfg,))
    if "_steer_note" in st.session_state:
        st.warning(st.session_state.pop("_steer_note"))
    _measured(ctx)
    steer_toward.render(ctx, apply_spec)
    concept, op, spec, sampling, prompt = _controls(ctx, model)
    go_col, save_col, sweep_col = st.columns(3)
    clicked = go_col.button("Generate", type="primary", key="steer_go")
    save_col.download_button("Save spec (JSON)", spec.to_json(), "steer_spec.json",
                              mime="application/json", key="steer_save")
    swept = sweep_col.button("Strength sweep", key="steer_sweep_go",
                             disabled=sl.OPS[op].range is None,
                             help="one short generation per strength, steered and with a "
                                  "random concept of the same strength, scored with "
                                  "steering off (the edit of the controls alone)")
    if clicked:
        _generate(ctx, model, concept, spec, sampling, prompt)
    if swept:
        _sweep(ctx, concept, op, sampling, prompt)
    if "steer_result" in st.session_state:
        _show_result(st.session_state["steer_result"])
    if "steer_sweep" in st.session_state:
        c, o, rows, table = st.session_state["steer_sweep"]
        metric = st.selectbox("Sweep metric", sorted(rows.metric.unique()),
                              key="steer_sweep_metric")
        st.plotly_chart(plots.sweep_plot(rows, metric, f"Strength sweep: {o} concept {c}"),
                        key="sweep_plot")
        st.caption(f"Every metric steer-eval reports, steered mean [{SWEEP_CI}] (control mean) "
                   f"per strength: {sl.SWEEP_SAMPLES} generations per condition, at most "
                   f"{sl.SWEEP_NEW_TOKENS} new tokens (library `sweep`, the same numbers)")
        st.code(table, language=None)
