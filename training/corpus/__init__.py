"""Corpus preparation: sources (wiki, text, hf), the split, and corpus -> token shards.

    from training.corpus import open_corpus, prepare_shards
    prepare_shards(open_corpus("wiki", max_docs=5000), "runs/data", vocab_size=4096)
"""

from cocomix_lens.lazy import lazy_exports

# Importing the source modules registers them in SOURCES.
from training.corpus import hf, text, wiki, world  # noqa: F401
from training.corpus.sources import SOURCES, CorpusSource, open_corpus, register_source, split_of
from training.corpus.wiki import WIKI_LICENSE, WIKI_SHA256, verified_wiki_file

# prepare_shards needs torch and the tokenizer: imported on first use (`cocomix-lens prepare
# --help` lists SOURCES without them).
__getattr__, __dir__ = lazy_exports(__name__, {"PrepareResult": "training.corpus.build",
                                               "prepare_shards": "training.corpus.build"})
__all__ = [
    "SOURCES", "WIKI_LICENSE", "WIKI_SHA256", "CorpusSource", "PrepareResult", "open_corpus",
    "prepare_shards", "register_source", "split_of", "verified_wiki_file",
]
