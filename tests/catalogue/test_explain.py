"""Concept explanations without a language model: word forms folded, a planted concept
explained by its planted word, and the detection score against a direct AUROC."""

from __future__ import annotations

import numpy as np
import torch

from cocomix_lens.catalogue.explain import Units, detection_auroc, explain
from cocomix_lens.catalogue.words import fold, token_stems

VOCAB = [".", " the", " a", " farm", " farms", " farmer", " farming", " goat", " sea",
         " boat", " ship", " dog", " cat", " ran", " sat", " 7"]
FARM = [3, 4, 5, 6]
FILL = [1, 2, 7, 8, 9, 10, 11, 12, 13, 14, 15]


def planted(n_sentences: int = 400, seed: int = 0):
    """Sentences of 6 filler tokens and a '.', a fifth with one farm word form inserted;
    concept 0 fires on the farm word, concept 1 on a random token of random sentences."""
    rng = np.random.default_rng(seed)
    tokens, positions, concepts, unit = [], [], [], []
    for s in range(n_sentences):
        words = list(rng.choice(FILL, 6))
        farm = s % 5 == 0
        if farm:
            words.insert(int(rng.integers(0, 6)), int(rng.choice(FARM)))
        start = len(tokens)
        tokens += words + [0]
        unit += [s] * (len(words) + 1)
        if farm:
            positions.append(start + next(i for i, w in enumerate(words) if w in FARM))
            concepts.append(0)
        if rng.random() < 0.3:
            positions.append(start + int(rng.integers(0, len(words))))
            concepts.append(1)
    return (Units(np.array(tokens), np.array(unit)), np.array(positions), np.array(concepts))


def test_word_forms_fold_to_one_key():
    assert len({fold(w) for w in ("farm", "Farms", "farmer", "farming", "farmers")}) == 1
    assert fold("baking") == fold("baked") == fold("bake")
    assert fold("running") == fold("run") and fold("grass") == "grass"
    stem_of, stems = token_stems(VOCAB)
    assert len({stem_of[t] for t in FARM}) == 1 and stem_of[0] == -1
    assert len(stems) == len(VOCAB) - 2 - 3  # ".", " 7" have none; farm forms share one


def test_planted_concept_is_explained_by_its_word_with_detection_near_one():
    units, positions, concepts = planted()
    table = explain(units, positions, concepts, 2, VOCAB, promoted=[[" goat", "."], []],
                    truth={0: ("topic=farming", 0.93)})
    row = table.loc[0]
    assert fold(row["keywords"][0]) == "farm"
    assert row["head"] == "farming"
    assert row["explanation"].startswith("farming — farm")
    assert "promotes goat" in row["explanation"] and "topic = farming, F1 0.93" in row[
        "explanation"]
    assert row["detection"] > 0.99
    # concept 1 fires at random: whatever its words, they cannot find its sentences
    assert abs(table.loc[1, "detection"] - 0.5) < 0.15


def test_detection_auroc_equals_a_pairwise_count():
    g = torch.Generator().manual_seed(0)
    score = torch.randint(0, 3, (60, 4), generator=g).float()
    active = torch.rand(60, 4, generator=g) < 0.3
    got = detection_auroc(score, active)
    for c in range(4):
        pos, neg = score[active[:, c], c], score[~active[:, c], c]
        pairs = (pos[:, None] > neg[None, :]).double() + 0.5 * (pos[:, None] == neg[None, :])
        assert abs(got[c] - float(pairs.mean())) < 1e-9
    assert np.isnan(detection_auroc(score, torch.zeros_like(active))).all()


def planted_catalogue():
    """A catalogue of the planted concepts: explanations from explain(), nothing else known."""
    import pandas as pd

    from cocomix_lens.catalogue import Catalogue

    units, positions, concepts = planted()
    table = explain(units, positions, concepts, 2, VOCAB)
    n = len(table)
    df = table.assign(name=table["head"], dead=False, prediction_density=[0.1, 0.2],
                      label_density=0.1, truth="", truth_f1=np.nan,
                      teacher_tokens=[[" sea"]] * n, student_tokens=[[" boat"]] * n,
                      fires_on=[[]] * n)
    ctx = pd.DataFrame({"concept": [1], "source": ["teacher"], "rank": [0], "value": [1.0],
                        "position": [0], "document": ["0"], "left": ["the"], "token": [" dog"],
                        "right": [" ran"]})
    meta = pd.DataFrame({"concept": [], "key": [], "value": []})
    return Catalogue(df, ctx, meta, {})


def test_search_by_another_word_form_finds_the_planted_concept():
    cat = planted_catalogue()
    for query in ("farmers", "Farming", "farm"):
        found = cat.search(query)
        assert found.index[0] == 0 and "explanation" in found.loc[0, "matched"]
    assert cat.search("dogs").index[0] == 1  # through a context's active token


def test_units_are_sentences_cut_to_at_most_max_len_tokens():
    from cocomix_lens.catalogue.explain import text_units

    ends = np.array([False, True, False])  # token 1 ends a sentence
    tokens = np.array([0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 1])
    assert text_units(tokens, ends, max_len=3).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3]
    assert text_units(tokens[:0], ends).tolist() == []
