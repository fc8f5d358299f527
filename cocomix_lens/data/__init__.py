"""Data formats: documents, tokenizers, token shards and atomic files.

    from cocomix_lens.data import TokenShards
    shards = TokenShards.open("runs/data")
    x, y = shards.batch("train", starts, seq_len=256)

Corpus preparation (sources, BPE training, writing shards) lives in `training.corpus`.
"""

from cocomix_lens.lazy import lazy_exports

EXPORTS = {
    "EOS_TOKEN": "cocomix_lens.data.tokenizer",
    "SPLITS": "cocomix_lens.data.documents",
    "TOKENIZERS": "cocomix_lens.data.tokenizer",
    "Document": "cocomix_lens.data.documents",
    "TokenShards": "cocomix_lens.data.shards",
    "build_tokenizer": "cocomix_lens.data.tokenizer",
    "check_tokenizer": "cocomix_lens.data.tokenizer",
    "eos_id": "cocomix_lens.data.tokenizer",
    "fetch_gpt2_tokenizer": "cocomix_lens.data.tokenizer",
    "load_tokenizer": "cocomix_lens.data.tokenizer",
    "read_manifest": "cocomix_lens.data.shards",
    "save_tokenizer": "cocomix_lens.data.tokenizer",
    "tokenizer_sha256": "cocomix_lens.data.tokenizer",
    "train_bpe": "cocomix_lens.data.tokenizer",
}
__all__ = list(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
