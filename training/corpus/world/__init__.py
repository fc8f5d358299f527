"""The `world` corpus source: a synthetic world whose latent variables are known per token.

    cocomix-lens prepare --corpus world --max-docs 20000 --out runs/world

Documents come from `generator.generate(seed, i)`; each carries `meta["spans"]`, the ground
truth that `prepare` writes beside the shards as truth_<split>.npy (cocomix_lens.data.truth).
The oracle that reads the latents back from any text is `cocomix_lens.world.parse_text`.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from cocomix_lens.data.documents import Document
from cocomix_lens.data.truth import SPANS_KEY
from cocomix_lens.world.lexicon import VOCABULARY
from training.corpus.sources import CorpusSource, register_source
from training.corpus.world.generator import generate

WORLD_VERSION = 1  # bump whenever the generator's output for a (seed, index) changes
DEFAULT_DOCS = 20_000
# The vocabulary is closed: this many documents show the BPE every word form many times.
TOKENIZER_DOCS = 2_000


@register_source("world")
class WorldSource(CorpusSource):
    """`max_docs` documents of world `seed` (default 20,000, about 1.5M tokens)."""

    def __init__(self, max_docs: int | None = None, seed: int = 0) -> None:
        if max_docs is not None and max_docs < 1:
            raise ValueError(f"max_docs must be >= 1, got {max_docs}; fix: pass --max-docs N")
        self.max_docs = max_docs or DEFAULT_DOCS
        self.seed = seed

    def fingerprint(self) -> dict[str, Any]:
        return {"source": "world", "version": WORLD_VERSION, "seed": self.seed,
                "max_docs": self.max_docs, "tokenizer_docs": TOKENIZER_DOCS,
                "vocabulary": len(VOCABULARY)}

    def num_documents(self) -> int:
        return self.max_docs

    def documents(self) -> Iterator[Document]:
        for i in range(self.max_docs):
            text, spans, latents = generate(self.seed, i)
            yield Document(id=f"world{self.seed}:{i}", text=text,
                           meta={**latents, SPANS_KEY: spans})

    def tokenizer_documents(self) -> Iterator[Document]:
        return islice(self.documents(), TOKENIZER_DOCS)
