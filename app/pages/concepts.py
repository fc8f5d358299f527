"""Concepts (placeholder until the catalogue lands)."""

import streamlit as st


def render(ctx) -> None:
    st.header("Concepts")
