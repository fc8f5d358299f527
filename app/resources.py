"""What loads once per process: runs, models, catalogue (`st.cache_resource`), and the lock
that serialises model use across browser sessions.

Models are shared by every session, and steering works by hooks on the shared model, so any
forward pass (generation, inspection) holds the run's lock: a steered generation in one tab
can never leak into another tab's default generation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st
from streamlit.logger import get_logger

log = get_logger(__name__)  # streamlit's handler: these lines reach the server log

PIECE_NAMES = {"student": "the CoCoMix student", "baseline": "the NTP baseline",
               "teacher": "the teacher", "sae": "the SAE", "tokenizer": "the tokenizer",
               "labels": "the label cache", "catalogue": "the concept catalogue",
               "shards": "the token shards"}


@st.cache_resource(show_spinner=False, max_entries=8)
def open_run(path: str, device: str):
    """The `Run` at `path` (already checked to lie under the root)."""
    from cocomix_lens.rundir import Run

    return Run.open(path, device=device)


@st.cache_resource(show_spinner=False, max_entries=32)
def _piece(path: str, device: str, name: str) -> Any:
    value = getattr(open_run(path, device), name)
    log.info("loaded %s of run %s", name, path)
    return value


def piece(run, name: str) -> Any:
    """A piece of the run (model, SAE, catalogue ...), loaded once per process."""
    with st.spinner(f"Loading {PIECE_NAMES.get(name, name)} ..."):
        return _piece(str(run.path), run.device, name)


@st.cache_resource(show_spinner=False, max_entries=8)
def _lock(path: str, device: str) -> threading.Lock:
    return threading.Lock()


@contextmanager
def model_in_use(run) -> Iterator[None]:
    """Hold the run's model lock (one forward pass or generation at a time per run)."""
    lock = _lock(str(run.path), run.device)
    if not lock.acquire(blocking=False):
        with st.spinner("Waiting for another session to finish with the model ..."):
            lock.acquire()
    try:
        yield
    finally:
        lock.release()
