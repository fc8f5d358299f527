"""prepare_shards (training.corpus.build): idempotence, --force, deterministic split."""

import json
import random

import pytest

from cocomix_lens.data import TokenShards
from training.corpus import open_corpus, prepare_shards, split_of

WORDS = "one two three four five six seven eight nine ten".split()


def _write_corpus(path, n=40, seed=0):
    rng = random.Random(seed)
    rows = [{"text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 20)))}
            for _ in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return open_corpus("text", path=str(path))


def _prep(corpus, out, **kw):
    kw = {"vocab_size": 280, "val_fraction": 0.25, **kw}
    return prepare_shards(corpus, out, **kw)


def test_rerun_with_same_inputs_is_a_noop(tmp_path):
    corpus = _write_corpus(tmp_path / "c.jsonl")
    first = _prep(corpus, tmp_path / "out")
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    second = _prep(corpus, tmp_path / "out")
    assert not first.skipped and second.skipped
    assert second.manifest == first.manifest
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()} == mtimes


def test_different_inputs_need_force(tmp_path):
    corpus = _write_corpus(tmp_path / "c.jsonl")
    _prep(corpus, tmp_path / "out")
    with pytest.raises(FileExistsError, match="different inputs.*--force"):
        _prep(corpus, tmp_path / "out", vocab_size=270)
    changed = _write_corpus(tmp_path / "c.jsonl", seed=1)  # same path, new content
    with pytest.raises(FileExistsError, match="--force"):
        _prep(changed, tmp_path / "out")
    res = _prep(changed, tmp_path / "out", force=True)
    assert not res.skipped
    assert TokenShards.open(tmp_path / "out", verify=True).manifest == res.manifest


def test_non_empty_directory_without_manifest_needs_force(tmp_path):
    corpus = _write_corpus(tmp_path / "c.jsonl")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty.*--force"):
        _prep(corpus, tmp_path / "out")
    assert not _prep(corpus, tmp_path / "out", force=True).skipped


def test_split_is_by_document_and_reproducible(tmp_path):
    corpus = _write_corpus(tmp_path / "c.jsonl")
    a = _prep(corpus, tmp_path / "a").manifest
    b = _prep(corpus, tmp_path / "b").manifest
    assert a["splits"] == b["splits"] and a["tokenizer_sha256"] == b["tokenizer_sha256"]
    shards = TokenShards.open(tmp_path / "a")
    for split in ("train", "val"):
        ids = [d["id"] for d in shards.documents(split)]
        assert ids and all(split_of(i, 0.25, seed=0) == split for i in ids)
    c = _prep(corpus, tmp_path / "c", seed=3).manifest
    assert c["splits"]["val"]["sha256"] != a["splits"]["val"]["sha256"]


def test_empty_split_and_bad_fraction_are_refused_without_output(tmp_path):
    corpus = _write_corpus(tmp_path / "c.jsonl", n=1)
    with pytest.raises(ValueError, match="no document fell into the"):
        _prep(corpus, tmp_path / "out", val_fraction=0.01)
    assert not (tmp_path / "out" / "train.bin").exists()
    with pytest.raises(ValueError, match="val_fraction must be in"):
        _prep(corpus, tmp_path / "out2", val_fraction=1.5)


def _id_tokenizer(path, size):
    """A byte-level tokenizer with `size` ids, EOS last (GPT-2's layout when size=50257)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab.update({f"unused{i}": i for i in range(len(vocab), size - 1)})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    tok.save(str(path))
    return str(path)


@pytest.mark.parametrize("kind,size,dtype", [("gpt2", 50257, "uint16"),
                                             ("file", 70000, "uint32")])
def test_loaded_tokenizers_set_eos_and_dtype(tmp_path, kind, size, dtype):
    corpus = _write_corpus(tmp_path / "c.jsonl", n=12)
    file = _id_tokenizer(tmp_path / "tok.json", size)
    m = _prep(corpus, tmp_path / "out", tokenizer=kind, tokenizer_file=file).manifest
    assert (m["vocab_size"], m["eos_id"], m["dtype"]) == (size, size - 1, dtype)
    shards = TokenShards.open(tmp_path / "out", verify=True)
    docs = shards.documents("train")
    tokens = shards.split("train")
    assert tokens.dtype.name == dtype and tokens[docs[0]["end"]] == size - 1
    source = {d.id: d.text for d in corpus.documents()}
    assert shards.decode(tokens[docs[0]["start"]:docs[0]["end"]]) == source[docs[0]["id"]]
