"""Inspection: per-token concept predictions, teacher labels, attribution and slot ablation.

    from cocomix_lens.inspection import inspect
    res = inspect(run, "The river flows into the sea.")
    res.frame; res.tokens; print(res.table())
"""

from cocomix_lens.lazy import lazy_exports

EXPORTS = {
    "FRAME_COLUMNS": "cocomix_lens.inspection.core",
    "Inspection": "cocomix_lens.inspection.core",
    "SlotEffects": "cocomix_lens.inspection.slots",
    "TOKEN_COLUMNS": "cocomix_lens.inspection.core",
    "inspect": "cocomix_lens.inspection.core",
    "slot_effects": "cocomix_lens.inspection.slots",
}
__all__ = list(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
