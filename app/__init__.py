"""The Streamlit app (`cocomix-lens app --run DIR`): concepts, inspection, steering, training.

Pages are thin (`app/views/`); what they compute lives in importable modules that tests call
directly: `runs` (which run directories a user may open), `steer_logic` (capped, streamed,
steered generation), `training_data` (metrics records -> tables), `plots` (plotly figures).
"""
