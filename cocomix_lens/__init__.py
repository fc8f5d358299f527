"""cocomix-lens: train, inspect and steer CoCoMix language models with TransformerLens hooks.

Names are imported on first use (`cocomix_lens.lazy`): `import cocomix_lens` does not import
torch, TransformerLens, pandas or the tokenizer.
"""

from cocomix_lens.lazy import lazy_exports

__version__ = "0.1.0"

EXPORTS = {
    "CoCoMixConfig": "cocomix_lens.config",
    "PRESETS": "cocomix_lens.config",
    "CoCoMixModel": "cocomix_lens.model",
    "ConceptExtractor": "cocomix_lens.concepts",
    "LabelCache": "cocomix_lens.concepts",
    "load_teacher": "cocomix_lens.concepts",
    "MissingPieceError": "cocomix_lens.rundir",
    "Run": "cocomix_lens.rundir",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
