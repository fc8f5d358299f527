"""Oracle scores of generated text (cocomix_lens/world/scoring.py)."""

import numpy as np

from cocomix_lens.world import form_share, grammatical_share, mention_share, topic_share


def test_shares_count_sentences_and_drop_an_unfinished_tail():
    texts = ["Anna baked the pie. Anna baked the comet. Tom sold the co",
             "Tom sold the coin. He sold two ledgers.", "of the of the of the"]
    g = grammatical_share(texts)
    # text 0: 2 sentences (tail dropped), text 1: 2, text 2: one unfinished = 1 ungrammatical.
    assert g.n == 5 and g.hits.tolist() == [True, False, True, True, False]
    assert g.text_index.tolist() == [0, 0, 1, 1, 2]
    assert topic_share(texts, "trade").value == 2 / 5
    assert topic_share(texts, "cooking").value == 2 / 5  # the comet sentence: majority tie
    assert topic_share(texts, "cooking", grammatical_only=True).value == 1 / 5
    assert mention_share(texts, "Tom").hits.tolist() == [False, False, True, True, False]
    # The comet sentence has a template's form but not its agreement.
    assert form_share(texts).hits.tolist() == [True, True, True, True, False]


def test_bootstrap_interval_resamples_texts():
    texts = ["Anna baked the pie."] * 30 + ["Anna baked the comet."] * 10
    s = grammatical_share(texts)
    lo, hi = s.ci(level=0.95, n_boot=4000, seed=0)
    # Binomial by text: p = 0.75, n = 40, sd = 0.068; the interval is about ±0.13.
    assert lo < 0.75 < hi and 0.2 < hi - lo < 0.33
    assert np.isnan(grammatical_share([]).value)
