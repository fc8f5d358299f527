"""Streamlit entry point: `streamlit run app/main.py` (use `cocomix-lens app --run DIR`)."""

from app.shell import main

main()
