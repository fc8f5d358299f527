"""Corpus registry and the document split (training.corpus.sources)."""

import pytest

from training.corpus import SOURCES, open_corpus, split_of


def test_registry_holds_the_three_sources():
    assert {"wiki", "text", "hf"} <= set(SOURCES)


def test_unknown_corpus_and_wrong_option_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown corpus 'nope'; choose one of"):
        open_corpus("nope")
    with pytest.raises(ValueError, match="does not take option.*path"):
        open_corpus("wiki", path=str(tmp_path))


def test_none_options_are_dropped():
    src = open_corpus("wiki", path=None, max_docs=3)
    assert len(list(src.documents())) == 3


def test_split_is_deterministic_order_free_and_near_fraction():
    ids = [f"doc-{i}" for i in range(4000)]
    a = [split_of(i, 0.1, seed=0) for i in ids]
    b = [split_of(i, 0.1, seed=0) for i in reversed(ids)][::-1]
    assert a == b
    frac = a.count("val") / len(a)
    assert 0.08 < frac < 0.12
    other_seed = [split_of(i, 0.1, seed=1) for i in ids]
    assert other_seed != a
    assert all(split_of(i, 0.0) == "train" for i in ids[:100])


def test_bad_val_fraction_names_the_fix():
    with pytest.raises(ValueError, match="val_fraction must be in"):
        split_of("x", 1.0)
