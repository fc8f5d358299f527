"""Data formats: documents, tokenizers, token shards and atomic files.

    from cocomix_lens.data import TokenShards
    shards = TokenShards.open("runs/data")
    x, y = shards.batch("train", starts, seq_len=256)

Corpus preparation (sources, BPE training, writing shards) lives in `training.corpus`.
"""

from cocomix_lens.data.documents import SPLITS, Document
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

__all__ = [
    "EOS_TOKEN", "SPLITS", "TOKENIZERS", "Document", "TokenShards", "build_tokenizer",
    "check_tokenizer", "eos_id", "fetch_gpt2_tokenizer", "load_tokenizer", "read_manifest",
    "save_tokenizer", "tokenizer_sha256", "train_bpe",
]
