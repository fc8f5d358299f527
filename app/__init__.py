"""The Streamlit app over a run directory (Concepts, Inspect, Steer, Training pages).

Not built yet: it is the next milestone on the roadmap. The run directory written by
`cocomix-lens pipeline` already holds everything it will load (see summary.json, artifacts).
"""
