"""Page switching from a widget callback, shared by the views (which never import the shell)."""

from __future__ import annotations

import streamlit as st


def go(page: str, concept: int | None = None) -> None:
    """Switch page (and concept) from a callback; the URL follows on the rerun."""
    st.session_state["page"] = page
    if concept is not None:
        st.session_state["concept"] = int(concept)
        st.session_state["steer_concept"] = int(concept)
