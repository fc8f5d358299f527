"""Data: corpus sources (wiki, text, hf), tokenizers, token shards and window sampling.

    from cocomix_lens.data import TokenShards, WindowSampler
    shards = TokenShards.open("runs/data")
    sampler = WindowSampler(shards.n_tokens("train"), seq_len=256, batch_size=8, seed=0)
    x, y = shards.batch("train", sampler.next_starts(), seq_len=256)
"""

# Importing the source modules registers them in SOURCES.
from cocomix_lens.data import hf, text, wiki  # noqa: F401
from cocomix_lens.data.build import PrepareResult, prepare_shards
from cocomix_lens.data.corpus import SOURCES, CorpusSource, Document, open_corpus, split_of
from cocomix_lens.data.sampler import WindowSampler, sequential_starts
from cocomix_lens.data.shards import TokenShards, read_manifest
from cocomix_lens.data.tokenizer import (
    EOS_TOKEN,
    TOKENIZERS,
    build_tokenizer,
    check_tokenizer,
    eos_id,
    fetch_gpt2_tokenizer,
    load_tokenizer,
    save_tokenizer,
    tokenizer_sha256,
    train_bpe,
)
from cocomix_lens.data.wiki import WIKI_LICENSE, WIKI_SHA256, verified_wiki_file

__all__ = [
    "EOS_TOKEN", "SOURCES", "TOKENIZERS", "WIKI_LICENSE", "WIKI_SHA256", "CorpusSource",
    "Document", "PrepareResult", "TokenShards", "WindowSampler", "build_tokenizer",
    "check_tokenizer", "eos_id", "fetch_gpt2_tokenizer", "load_tokenizer", "open_corpus",
    "prepare_shards", "read_manifest", "save_tokenizer", "sequential_starts", "split_of",
    "tokenizer_sha256", "train_bpe", "verified_wiki_file",
]
