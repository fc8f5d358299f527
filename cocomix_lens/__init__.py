"""cocomix-lens: train, inspect and steer CoCoMix language models with TransformerLens hooks."""

from cocomix_lens.concepts import ConceptExtractor, LabelCache, load_teacher
from cocomix_lens.config import PRESETS, CoCoMixConfig
from cocomix_lens.model import CoCoMixModel
from cocomix_lens.rundir import MissingPieceError, Run

__all__ = ["CoCoMixConfig", "CoCoMixModel", "ConceptExtractor", "LabelCache",
           "MissingPieceError", "PRESETS", "Run", "load_teacher"]
__version__ = "0.1.0"
