"""The app's frame: run picker and page choice in the sidebar, URL sync, errors as st.error.

The URL carries `run` (relative to the root), `page` and `concept`, so any view can be shared.
Every page is `render(ctx)` in `PAGES`; an error a user can fix shows as one st.error line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from app.config import app_config
from app.runs import find_runs, resolve_run

log = logging.getLogger(__name__)

PAGE_TITLES = {"concepts": "Concepts", "inspect": "Inspect", "steer": "Steer",
               "training": "Training"}
DEFAULT_PAGE = "concepts"


@dataclass
class Context:
    """What a page sees."""

    root: Path
    run_name: str
    run: Any  # cocomix_lens.rundir.Run
    concept: int | None  # from the URL / the last concept opened


def pages() -> dict[str, Any]:
    from app.views import concepts, inspect, steer, training

    return {"concepts": concepts, "inspect": inspect, "steer": steer, "training": training}


def parse_concept(value: Any) -> int:
    """A concept id from the URL; ValueError naming the fix otherwise."""
    try:
        return int(str(value))
    except ValueError:
        raise ValueError(f"concept {value!r} in the URL is not a concept id: use a whole "
                         "number such as ?concept=12, or pick one in the table") from None


def _init_state(default_run: str | None) -> None:
    """Seed the session from the URL once; afterwards widgets own the state."""
    ss, qp = st.session_state, st.query_params
    if ss.get("_seeded"):
        return
    ss["_seeded"] = True
    ss["run"] = qp.get("run", default_run)
    page = qp.get("page", DEFAULT_PAGE)
    ss["page"] = page if page in PAGE_TITLES else DEFAULT_PAGE
    if page not in PAGE_TITLES:
        ss["_url_error"] = (f"page {page!r} in the URL is unknown: use one of "
                            f"{', '.join(PAGE_TITLES)}")
    if "concept" in qp:
        ss["concept_raw"] = qp["concept"]


def _sidebar(root: Path, default_run: str | None) -> str | None:
    runs = find_runs(root)
    wanted = st.session_state.get("run")
    st.sidebar.title("cocomix-lens")
    if wanted and wanted not in runs:
        # Named in the URL but not offered: say why (outside the root, missing, not a run).
        resolve_run(root, wanted)
        runs = [wanted, *runs]
    if not runs:
        raise FileNotFoundError(f"no run directories under {root}: make one with "
                                f"'cocomix-lens pipeline --out {root / 'demo'}'")
    if st.session_state.get("run") not in runs:
        st.session_state["run"] = runs[0]
    st.sidebar.selectbox("Run", runs, key="run", help=f"run directories under {root}")
    st.sidebar.radio("Page", list(PAGE_TITLES), key="page",
                     format_func=PAGE_TITLES.__getitem__)
    return st.session_state["run"]


def _concept() -> int | None:
    ss = st.session_state
    if "concept_raw" in ss:
        raw = ss.pop("concept_raw")
        ss["concept"] = parse_concept(raw)
        ss.setdefault("steer_concept", ss["concept"])
    return ss.get("concept")


def _sync_url(ctx: Context) -> None:
    params = {"run": ctx.run_name, "page": st.session_state["page"]}
    if ctx.concept is not None:
        params["concept"] = str(ctx.concept)
    if dict(st.query_params) != params:
        st.query_params.from_dict(params)


def _body() -> None:
    cfg = app_config()
    if cfg.root is None:
        raise ValueError("no root of runs given: start the app with "
                         "'cocomix-lens app --run DIR' (or --root DIR)")
    _init_state(cfg.run)
    if "_url_error" in st.session_state:
        st.error(st.session_state.pop("_url_error"))
    name = _sidebar(cfg.root, cfg.run)
    path = resolve_run(cfg.root, name)
    from app.resources import open_run

    run = open_run(str(path), cfg.device)
    st.sidebar.caption(f"{run.kind} run at `{path}`")
    ctx = Context(root=cfg.root, run_name=name, run=run, concept=None)
    try:
        ctx.concept = _concept()
    finally:
        _sync_url(ctx)
    pages()[st.session_state["page"]].render(ctx)


def show_error(err: BaseException) -> None:
    """One line for the user; the traceback goes to the server log only."""
    if isinstance(err, (FileNotFoundError, ValueError, KeyError, IndexError)):
        st.error(str(err).strip("'\""))
    else:
        log.exception("app error")
        st.error(f"{type(err).__name__}: {err}. This is a bug in cocomix-lens: please report "
                 "it with the server log.")


def main() -> None:
    st.set_page_config(page_title="cocomix-lens", layout="wide")
    try:
        _body()
    except Exception as err:  # noqa: BLE001 — shown as one line, logged with its traceback
        show_error(err)
