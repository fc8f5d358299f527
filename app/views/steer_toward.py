"""A section of the Steer page: steer toward a topic or a concept by name with the recommended
recipe (`cocomix_lens.steering.toward`), and the steering benchmark's leaderboard
(`cocomix-lens steer-bench`): this run's when it has one, else the committed demo-run one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

COMMITTED = (Path(__file__).resolve().parents[2] / "benchmarks" / "results"
             / "steer_bench_world" / "results.json")


def bench_results(run: Any) -> tuple[dict[str, Any] | None, str]:
    """(results.json of the steer-bench, where it was measured) or (None, "")."""
    if run.has("steer_bench"):
        return run.steer_bench, f"this run (`cocomix-lens steer-bench --run {run.path}`)"
    if COMMITTED.is_file():
        results = json.loads(COMMITTED.read_text(encoding="utf-8"))
        return results, (f"the demo run `{results['run']}` (committed: "
                         "benchmarks/results/steer_bench_world; `cocomix-lens steer-bench "
                         "--run runs/demo` measures this run)")
    return None, ""


def _use(run: Any, name: str, apply_spec: Callable[[Any], None]) -> None:
    from cocomix_lens.steering import validate_spec
    from cocomix_lens.steering.toward import toward

    # the checkbox is for topics: a typed concept name takes the recommended edit
    keep = bool(st.session_state.get("steer_toward_keep")) and not str(
        st.session_state.get("steer_toward_name", "")).strip()
    try:
        spec, how = toward(run, name, keep_grammar=keep)
        validate_spec(spec, run.student.cfg)
        apply_spec(spec)
        st.session_state["steer_toward_how"] = how
    except ValueError as err:
        st.session_state["_steer_note"] = f"could not steer toward {name!r}: {err}"


def render(ctx: Any, apply_spec: Callable[[Any], None]) -> None:
    """The expander; `apply_spec` puts the recommended spec into the Steer page's controls
    (passed in by app/views/steer.py: importing it back would close a circle)."""
    import pandas as pd

    from cocomix_lens.steering.spec import position_label
    from cocomix_lens.steering.topic_eval import leaderboard
    from cocomix_lens.steering.topics import world_topics
    from cocomix_lens.steering.toward import KEEP_GRAMMAR_SOURCE, RECOMMENDED

    run = ctx.run
    topics = world_topics(run) if run.has("groundtruth") else []
    with st.expander("Steer toward a topic or a concept by name"):
        left, right = st.columns(2)
        topic = left.selectbox("Topic", topics, key="steer_toward_topic") if topics else None
        name = right.text_input("or a concept name (catalogue search)", key="steer_toward_name")
        target = name.strip() or topic
        keep = left.checkbox("Keep grammar (topics)", key="steer_toward_keep",
                             disabled=not topics or bool(name.strip()),
                             help="the edit the steering benchmark chose for the topic keeping "
                                  "grammar within 10 points of unsteered: it moves the topic "
                                  "less than the recommended edit")
        which = "grammar-keeping" if keep and not name.strip() else "recommended"
        st.button(f"Use the {which} edit toward {target!r}" if target else
                  f"Use the {which} edit", key="steer_toward_go", disabled=not target,
                  on_click=_use, args=(run, target, apply_spec))
        where = position_label(RECOMMENDED.positions, RECOMMENDED.span)
        st.caption(f"Recommended: {RECOMMENDED.op} {RECOMMENDED.strength} on the topic's "
                   f"{RECOMMENDED.concepts} of concepts at positions {where} "
                   f"({RECOMMENDED.source}). Keep grammar: "
                   f"{KEEP_GRAMMAR_SOURCE}.")
        if "steer_toward_how" in st.session_state:
            st.info(st.session_state["steer_toward_how"])
        results, where = bench_results(run)
        if results is None:
            return
        header, rows = leaderboard(results)
        st.markdown(f"**Steering benchmark** ({len(results['topics'])} topics, held-out "
                    f"openings of other topics; measured on {where}): harmonic mean of "
                    "concept, fluency and relevance, 95 % CIs over prompts.")
        st.dataframe(pd.DataFrame(rows, columns=list(header)), hide_index=True,
                     width="stretch", key="steer_bench_table")
