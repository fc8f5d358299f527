"""Token shards on disk (cocomix_lens.data.shards): decode back, batches, integrity checks."""

import json
import random

import numpy as np
import pytest
import torch

from cocomix_lens.data import TokenShards, train_bpe
from cocomix_lens.data.tokenizer import save_tokenizer
from training.corpus import open_corpus, prepare_shards

WORDS = "alpha beta gamma delta river stone cloud ☁ über naïve".split()


def _corpus(tmp_path, n=60):
    rng = random.Random(0)
    rows = [{"text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 40))),
             "topic": f"t{i % 3}"} for i in range(n)]
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return open_corpus("text", path=str(path)), rows


@pytest.fixture()
def prepared(tmp_path):
    corpus, rows = _corpus(tmp_path)
    prepare_shards(corpus, tmp_path / "shards", vocab_size=300, val_fraction=0.25)
    return TokenShards.open(tmp_path / "shards", verify=True), rows


def test_shards_decode_back_to_the_source_documents(prepared):
    shards, rows = prepared
    seen = {}
    for split in ("train", "val"):
        tokens = shards.split(split)
        assert tokens.dtype == np.uint16
        docs = shards.documents(split)
        assert shards.n_tokens(split) == docs[-1]["end"] + 1 == len(tokens)
        for d in docs:
            assert tokens[d["end"]] == shards.eos_id  # EOS after every document
            assert shards.eos_id not in tokens[d["start"]:d["end"]]
            seen[d["meta"]["line"]] = (shards.decode(tokens[d["start"]:d["end"]]), d["meta"])
    assert len(seen) == len(rows)
    for line, (text, meta) in seen.items():
        assert text == rows[line - 1]["text"]
        assert meta["topic"] == rows[line - 1]["topic"]


def test_document_of_maps_token_positions_to_their_document(prepared):
    shards, _ = prepared
    docs = shards.documents("train")
    for i in (0, 1, len(docs) - 1):
        d = docs[i]
        positions = [d["start"], (d["start"] + d["end"]) // 2, d["end"]]  # end = its EOS
        assert shards.document_of("train", positions).tolist() == [i, i, i]
    with pytest.raises(ValueError, match="token positions must lie in"):
        shards.document_of("train", [shards.n_tokens("train")])


def test_batch_windows_are_shifted_slices_of_the_memmap(prepared):
    shards, _ = prepared
    tokens = np.asarray(shards.split("train"), dtype=np.int64)
    starts = np.array([0, 7, len(tokens) - 9])
    x, y = shards.batch("train", starts, seq_len=8)
    assert x.dtype == torch.int64 and x.shape == (3, 8)
    for row, s in enumerate(starts):
        assert x[row].tolist() == tokens[s:s + 8].tolist()
        assert y[row].tolist() == tokens[s + 1:s + 9].tolist()
    with pytest.raises(ValueError, match="window starts must lie in"):
        shards.batch("train", [len(tokens) - 8], seq_len=8)
    with pytest.raises(ValueError, match="no split 'test'"):
        shards.split("test")


def test_open_refuses_damaged_or_foreign_directories(prepared, tmp_path):
    shards, _ = prepared
    root = shards.root
    with pytest.raises(FileNotFoundError, match="no manifest.json .*the prepare step"):
        TokenShards.open(tmp_path / "nowhere")
    # another tokenizer next to the shards
    good_tok = (root / "tokenizer.json").read_text()
    save_tokenizer(train_bpe(["something else entirely"] * 5, vocab_size=260),
                   root / "tokenizer.json")
    with pytest.raises(ValueError, match="tokenizer mismatch: the token shards"):
        TokenShards.open(root)
    (root / "tokenizer.json").write_text(good_tok)
    # flipped token: sizes still fine, only verify=True sees it
    raw = bytearray((root / "val.bin").read_bytes())
    raw[0] ^= 1
    (root / "val.bin").write_bytes(bytes(raw))
    TokenShards.open(root)
    with pytest.raises(ValueError, match="does not match the sha256.*force=True"):
        TokenShards.open(root, verify=True)
    (root / "val.bin").write_bytes(bytes(raw[:-2]))
    with pytest.raises(ValueError, match="does not hold .* tokens"):
        TokenShards.open(root)


def test_manifest_of_another_format_version_is_refused(prepared):
    shards, _ = prepared
    path = shards.root / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 99
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="format_version 99"):
        TokenShards.open(shards.root)


def test_gather_windows_stacks_slices_and_refuses_out_of_range_starts():
    from cocomix_lens.data.shards import gather_windows

    arr = np.arange(50, dtype=np.uint16) * 3
    got = gather_windows(arr, [0, 7, 40], 10)
    assert np.array_equal(got, np.stack([arr[s:s + 10] for s in (0, 7, 40)]))
    labels = np.arange(40).reshape(20, 2)  # rows of k labels gather the same way
    assert np.array_equal(gather_windows(labels, [3], 4)[0], labels[3:7])
    with pytest.raises(ValueError, match=r"must lie in \[0, 40\] for windows of 10; fix: "):
        gather_windows(arr, [41], 10)


def test_a_shard_cut_while_in_use_is_an_error_naming_it_not_sigbus(tmp_path):
    from helpers_training import make_shards

    from cocomix_lens.data.files import CorruptFileError

    shards = TokenShards.open(make_shards(tmp_path))
    n = shards.n_tokens("train")
    x, _ = shards.batch("train", [n - 9], 8)  # mapped and read once
    path = tmp_path / "data" / "train.bin" if (tmp_path / "data").is_dir() else next(
        tmp_path.rglob("train.bin"))
    with open(path, "r+b") as f:
        f.truncate(100)
    with pytest.raises(CorruptFileError, match=r"train.bin was cut to 100 of .*fix: re-run"):
        shards.batch("train", [n - 9], 8)
