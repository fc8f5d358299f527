"""Tokenizers and tokenizer identity (cocomix_lens.data.tokenizer)."""

import random

import pytest
from tokenizers import Tokenizer, models

from cocomix_lens.data import (
    EOS_TOKEN,
    build_tokenizer,
    check_tokenizer,
    eos_id,
    load_tokenizer,
    save_tokenizer,
    tokenizer_sha256,
    train_bpe,
)

WORDS = "the cat dog sat on a mat and ran far away over hills river stone".split()


def _texts(n=300, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))) for _ in range(n)]


@pytest.fixture(scope="module")
def tok():
    return train_bpe(_texts(), vocab_size=300)


def test_round_trip_is_lossless_for_any_text(tok):
    samples = _texts(20, seed=1) + ["Héllo  wörld\n\n\ttabs 日本語 🙂", " leading space",
                                    "", "x" * 500, f"two docs{EOS_TOKEN}glued"]
    for s in samples:
        ids = tok.encode(s, add_special_tokens=False).ids
        assert tok.decode(ids, skip_special_tokens=False) == s


def test_training_compresses_and_reserves_eos(tok):
    assert tok.get_vocab_size() == 300
    assert eos_id(tok) == 0
    text = _texts(1, seed=2)[0]
    assert len(tok.encode(text).ids) < len(text.encode()) / 2  # merges learnt whole words


def test_training_is_deterministic_and_sha_tracks_identity(tok, tmp_path):
    again = train_bpe(_texts(), vocab_size=300)
    assert tokenizer_sha256(again) == tokenizer_sha256(tok)
    assert tokenizer_sha256(train_bpe(_texts(), vocab_size=290)) != tokenizer_sha256(tok)
    save_tokenizer(tok, tmp_path / "tokenizer.json")
    assert tokenizer_sha256(load_tokenizer(tmp_path / "tokenizer.json")) == tokenizer_sha256(tok)


def test_check_tokenizer_refuses_a_different_tokenizer(tok):
    other = train_bpe(_texts(seed=5), vocab_size=280)
    check_tokenizer(tokenizer_sha256(tok), tok)
    check_tokenizer(tokenizer_sha256(tok), tokenizer_sha256(tok))
    with pytest.raises(ValueError, match="tokenizer mismatch: the label cache was built"):
        check_tokenizer(tokenizer_sha256(tok), other, what="label cache")


def test_registry_kinds_and_their_errors(tok, tmp_path):
    assert tokenizer_sha256(build_tokenizer("bpe", _texts, 300)) == tokenizer_sha256(tok)
    save_tokenizer(tok, tmp_path / "t.json")
    loaded = build_tokenizer("file", _texts, file=str(tmp_path / "t.json"))
    assert tokenizer_sha256(loaded) == tokenizer_sha256(tok)
    with pytest.raises(ValueError, match="GPT-2 has 50257"):
        build_tokenizer("gpt2", _texts, file=str(tmp_path / "t.json"))
    with pytest.raises(ValueError, match="needs a local GPT-2 tokenizer.json"):
        build_tokenizer("gpt2", _texts)
    with pytest.raises(ValueError, match="unknown tokenizer 'wordpiece'"):
        build_tokenizer("wordpiece", _texts)
    with pytest.raises(ValueError, match="vocab_size must be >= 257"):
        train_bpe(_texts(), vocab_size=100)
    with pytest.raises(FileNotFoundError, match="tokenizer file .* not found"):
        load_tokenizer(tmp_path / "nope.json")


def test_tokenizer_without_eos_is_refused(tmp_path):
    bare = Tokenizer(models.BPE())
    with pytest.raises(ValueError, match="no <\\|endoftext\\|> token"):
        eos_id(bare)
