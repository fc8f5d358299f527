"""Inspection: per-token concept predictions, teacher labels, attribution and slot ablation.

    from cocomix_lens.inspection import inspect
    res = inspect(run, "The river flows into the sea.")
    res.frame; res.tokens; print(res.table())
"""

from cocomix_lens.inspection.core import FRAME_COLUMNS, TOKEN_COLUMNS, Inspection, inspect
from cocomix_lens.inspection.slots import SlotEffects, slot_effects

__all__ = ["FRAME_COLUMNS", "Inspection", "SlotEffects", "TOKEN_COLUMNS", "inspect",
           "slot_effects"]
