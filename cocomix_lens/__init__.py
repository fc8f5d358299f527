"""cocomix-lens: train, inspect and steer CoCoMix language models with TransformerLens hooks."""

from cocomix_lens.config import PRESETS, CoCoMixConfig
from cocomix_lens.model import CoCoMixModel

__all__ = ["CoCoMixConfig", "CoCoMixModel", "PRESETS"]
__version__ = "0.1.0"
