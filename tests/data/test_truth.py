"""Per-token ground truth format (cocomix_lens/data/truth.py): spans to token ranges and the
written arrays."""

import numpy as np
import pytest

from cocomix_lens.data.truth import GroundTruth, TruthWriter, token_ranges


def test_token_ranges_take_every_token_overlapping_the_span():
    # Tokens "Anna", " was", " a", " baker", "." (the space belongs to the next token).
    offs = np.array([[0, 4], [4, 8], [8, 10], [10, 16], [16, 17]])
    first, last = token_ranges(offs, np.array([0, 5, 11, 0, 17]), np.array([4, 8, 16, 17, 17]))
    assert first.tolist() == [0, 1, 3, 0, 5] and last.tolist() == [1, 2, 4, 5, 5]


def test_writer_fills_columns_and_reader_returns_them(tmp_path):
    w = TruthWriter(tmp_path)
    offs = [(0, 4), (4, 8), (8, 10), (10, 16), (16, 17)]
    w.add("train", 0, offs, [[0, 17, "topic", "cooking"], [0, 4, "character", "Anna"]])
    w.add("train", 6, offs, [[0, 17, "topic", "sea"], [10, 16, "character", "Tom"]])
    w.add("val", 0, offs, [[5, 8, "character", "Tom"]])
    meta = w.finish({"train": 12, "val": 6})
    assert meta["columns"] == ["topic", "character"]
    t = GroundTruth.open(tmp_path)
    assert t.column("train", "topic").tolist() == [0] * 5 + [-1] + [1] * 5 + [-1]
    assert t.column("train", "character").tolist() == [0, -1, -1, -1, -1, -1,
                                                       -1, -1, -1, 1, -1, -1]
    assert t.column("val", "character").tolist() == [-1, 1, -1, -1, -1, -1]
    assert t.values("character") == ["Anna", "Tom"]
    with pytest.raises(ValueError, match="choose one of: topic, character"):
        t.column("val", "place")


def test_corpus_without_spans_writes_no_truth_and_removes_stale_files(tmp_path):
    (tmp_path / "truth.json").write_text("{}")
    (tmp_path / "truth_train.npy").write_bytes(b"")
    assert TruthWriter(tmp_path).finish({"train": 3}) is None
    assert not GroundTruth.exists(tmp_path) and not list(tmp_path.glob("truth_*"))
    with pytest.raises(FileNotFoundError, match="corpus='world'"):
        GroundTruth.open(tmp_path)
