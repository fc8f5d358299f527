"""cocomix-lens: train, inspect and steer CoCoMix language models with TransformerLens hooks."""

from cocomix_lens.config import PRESETS, CoCoMixConfig

__all__ = ["CoCoMixConfig", "PRESETS"]
__version__ = "0.1.0"
