"""Validation metrics against hand-computed values."""

import contextlib
import math

import numpy as np
import pytest
import torch
from helpers_training import TokenLabels

from cocomix_lens import CoCoMixConfig, CoCoMixModel
from training.distributed import DistEnv
from training.evaluate import _finish, concept_sums, evaluate
from training.objectives import get_objective


def _metrics(z, labels, n_concepts):
    model = type("M", (), {"cfg": type("C", (), {"n_concepts": n_concepts})()})()
    sums = concept_sums(z, labels)
    sums.update(loss_sum=torch.tensor(0.0), n_tok=torch.tensor(1.0))
    return _finish(sums, DistEnv(), True, model)


def test_concept_metrics_on_a_hand_made_batch():
    z = torch.tensor([[[5.0, 4.0, 3.0, 2.0, 1.0, 0.0],
                       [0.1, 0.2, 0.3, 0.4, 0.0, 9.0]]])
    labels = torch.tensor([[[1, 5, 0, -1],   # argmax 0 is a label; top-4 {0,1,2,3} holds 2 of 3
                            [0, 4, 2, 3]]])  # argmax 5 is not; top-4 {5,3,2,1} holds 2 of 4
    m = _metrics(z, labels, 6)
    assert m["concept_top1"] == pytest.approx(0.5)
    assert m["concept_top4"] == pytest.approx((2 / 3 + 2 / 4) / 2)
    assert m["concept_distinct"] == 2
    logp = torch.log_softmax(z, -1)[0]
    terms = [-logp[0, j] for j in (1, 5, 0)] + [-logp[1, j] for j in (0, 4, 2, 3)]
    assert m["concept_ce"] == pytest.approx(float(sum(terms) / 7), abs=1e-6)


class _Shards:
    """A stand-in for TokenShards over one fixed token array."""

    def __init__(self, tokens):
        self.tokens = tokens

    def batch(self, split, starts, seq_len):
        win = torch.stack([self.tokens[s: s + seq_len + 1] for s in starts])
        return win[:, :-1], win[:, 1:]


def test_evaluate_matches_a_direct_computation():
    torch.manual_seed(0)
    model = CoCoMixModel(CoCoMixConfig(d_model=16, n_layers=2, n_heads=2, d_vocab=29, n_ctx=8,
                                       insert_layer=1, n_concepts=32, concept_top_k=3))
    shards = _Shards(torch.randint(0, 29, (60,), generator=torch.Generator().manual_seed(1)))
    starts, labels = np.array([0, 8, 16, 24, 32]), TokenLabels(n_concepts=32)
    got = evaluate(model, model, get_objective("cocomix"), shards, "val", starts, 8, 2, labels,
                   DistEnv(), contextlib.nullcontext)
    x, y = shards.batch("val", starts, 8)
    logits, z = model(x, return_concept_logits=True)
    want = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()).item()
    assert got["val_loss"] == pytest.approx(want, abs=1e-5)
    assert got["val_ppl"] == pytest.approx(math.exp(want), rel=1e-5)
    direct = _metrics(z, labels.get("val", starts, x), 32)
    for k in ("concept_ce", "concept_top1", "concept_top4", "concept_distinct"):
        assert got[k] == pytest.approx(direct[k], abs=1e-6)
    assert model.training  # evaluate restores the mode it found
