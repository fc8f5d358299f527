"""Label cache: aligned with the shard, resumable byte-identically, refuses mismatches."""

import json

import numpy as np
import pytest
import torch
from helpers_concepts import VOCAB, tiny_hooked_transformer, tiny_sae, write_shards

from cocomix_lens.concepts import ConceptExtractor, LabelCache
from cocomix_lens.concepts.capture import IGNORE
from cocomix_lens.concepts.label_cache import ids_dtype

WINDOW, K, BATCH = 8, 3, 2
N_TRAIN = WINDOW * 5 + 3  # five full windows and a short tail


@pytest.fixture
def shards(tmp_path):
    g = np.random.default_rng(0)
    return write_shards(tmp_path / "data", {"train": g.integers(0, VOCAB, N_TRAIN),
                                            "val": g.integers(0, VOCAB, 2 * WINDOW)})


@pytest.fixture(scope="module")
def extractor():
    return ConceptExtractor(tiny_hooked_transformer(), tiny_sae())


def _build(root, shards, extractor, **kw):
    args = dict(teacher_sha="t" * 64, sae_sha="s" * 64, k=K, window=WINDOW, batch_size=BATCH)
    return LabelCache.build(root, shards, extractor, **{**args, **kw})


def _bytes(root):
    return {p.name: p.read_bytes() for p in sorted(root.glob("*.bin"))}


def test_rows_are_the_labels_of_their_window(tmp_path, shards, extractor):
    cache = _build(tmp_path / "labels", shards, extractor)
    tok = torch.from_numpy(shards.split("train").astype(np.int64))
    ids = cache.array("train", "ids")
    assert ids.dtype == np.uint16 and ids.shape == (N_TRAIN, K)
    assert cache.array("train", "scores").dtype == np.float16
    for w, start in enumerate(range(0, N_TRAIN, WINDOW)):
        x = tok[start:start + WINDOW]
        # the loss also scores the token after the window; the shard's last token has none
        y = torch.cat([tok[start + 1:start + WINDOW + 1], torch.tensor([IGNORE])])[:len(x)]
        want_ids, want_scores = extractor.labels(x, k=K, targets=y)
        np.testing.assert_array_equal(ids[start:start + len(x)], want_ids[0].numpy())
        np.testing.assert_array_equal(cache.array("train", "scores")[start:start + len(x)],
                                      want_scores[0].numpy().astype(np.float16))
    got = cache.labels("train", [8, 24], WINDOW)
    assert got.dtype == torch.int64 and got.shape == (2, WINDOW, K)
    assert torch.equal(got[1], torch.from_numpy(ids[24:32].astype(np.int64)))
    scores = cache.label_scores("train", [24], WINDOW)
    assert torch.equal(scores[0], torch.tensor(cache.array("train", "scores")[24:32]).float())
    meta = json.loads((tmp_path / "labels" / "meta.json").read_text())
    assert (meta["method"], meta["k"], meta["window"]) == ("attribution", K, WINDOW)
    assert meta["splits"]["train"]["done_windows"] == 6


class _Interrupt(Exception):
    pass


class _DiesAfter:
    """An extractor that is killed during its n-th batch."""

    def __init__(self, inner, n):
        self.inner, self.n = inner, n
        self.hook_name, self.n_latents = inner.hook_name, inner.n_latents
        self.method_name, self.teacher = inner.method_name, inner.teacher

    def labels(self, *args, **kwargs):
        self.n -= 1
        if self.n == 0:
            raise _Interrupt
        return self.inner.labels(*args, **kwargs)


def test_resume_after_interruption_is_byte_identical(tmp_path, shards, extractor):
    _build(tmp_path / "full", shards, extractor)
    with pytest.raises(_Interrupt):
        _build(tmp_path / "cut", shards, _DiesAfter(extractor, 3))
    meta = json.loads((tmp_path / "cut" / "meta.json").read_text())
    assert meta["splits"]["train"]["done_windows"] == 2 * BATCH
    with pytest.raises(ValueError, match=r"incomplete \(train: 4/6 windows\)"):
        LabelCache.open(tmp_path / "cut")
    # a torn batch: rows past the committed progress hold garbage when the process died
    ids = np.memmap(tmp_path / "cut" / "train.ids.bin", dtype=np.uint16, mode="r+")
    ids[2 * BATCH * WINDOW * K:] = 12345
    ids.flush()
    del ids
    _build(tmp_path / "cut", shards, extractor, batch_size=5)  # the cache's batch size wins
    assert _bytes(tmp_path / "cut") == _bytes(tmp_path / "full")
    assert LabelCache.open(tmp_path / "cut").meta == LabelCache.open(tmp_path / "full").meta


def test_mismatched_cache_is_refused(tmp_path, shards, extractor):
    root = tmp_path / "labels"
    _build(root, shards, extractor)
    LabelCache.open(root, shards=shards, teacher_sha="t" * 64, sae_sha="s" * 64)
    with pytest.raises(ValueError, match="another teacher"):
        LabelCache.open(root, teacher_sha="x" * 64)
    with pytest.raises(ValueError, match="another sae"):
        LabelCache.open(root, sae_sha="x" * 64)
    g = np.random.default_rng(1)
    other = write_shards(tmp_path / "other", {"train": g.integers(0, VOCAB, N_TRAIN)})
    with pytest.raises(ValueError, match="split 'train' was built on another token shard"):
        LabelCache.open(root, shards=other)
    with pytest.raises(ValueError, match=r"built differently: method='attribution' "
                                         r"\(now 'activation'\); k=3 \(now 2\)"):
        _build(root, shards, ConceptExtractor(extractor.teacher, extractor.sae, "activation"),
               k=2)
    with pytest.raises(FileNotFoundError, match="no label cache"):
        LabelCache.open(tmp_path / "nowhere")


def test_ids_are_uint16_up_to_65536_latents_then_int32():
    assert ids_dtype(65_536) == np.uint16 and ids_dtype(65_537) == np.int32


def test_shards_with_more_ids_than_the_teacher_knows_are_refused(tmp_path, extractor):
    big = write_shards(tmp_path / "big", {"train": np.arange(20) % VOCAB}, vocab=VOCAB + 10)
    with pytest.raises(ValueError, match="teacher's tokenizer"):
        _build(tmp_path / "labels", big, extractor)
