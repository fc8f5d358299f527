"""Each objective's loss on a hand-made batch equals a loop-by-loop hand computation."""

import math

import pytest
import torch

from cocomix_lens import CoCoMixConfig, CoCoMixModel
from training.objectives import (
    OBJECTIVES,
    Batch,
    LossWeights,
    concept_loss,
    get_objective,
    kd_loss,
    ntp_loss,
)

V, C, K = 23, 16, 4


def _cfg(mix_mode: str) -> CoCoMixConfig:
    return CoCoMixConfig(d_model=16, n_layers=2, n_heads=2, d_vocab=V, n_ctx=16, insert_layer=1,
                         n_concepts=C, concept_top_k=3, mix_mode=mix_mode)


def _model(mix_mode: str, seed: int = 0) -> CoCoMixModel:
    torch.manual_seed(seed)
    return CoCoMixModel(_cfg(mix_mode))


def _batch(seed: int = 3) -> Batch:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, V, (2, 5), generator=g)
    y = torch.randint(0, V, (2, 5), generator=g)
    labels = torch.randint(0, C, (2, 5, K), generator=g)
    return Batch(x, y, labels)


# ---- hand computations: plain python over every position -----------------------------------
def _log_softmax_row(row: list[float]) -> list[float]:
    m = max(row)
    lse = m + math.log(sum(math.exp(v - m) for v in row))
    return [v - lse for v in row]


def hand_ce(logits: torch.Tensor, y: torch.Tensor) -> float:
    terms = [-_log_softmax_row(logits[b, t].tolist())[int(y[b, t])]
             for b in range(y.shape[0]) for t in range(y.shape[1])]
    return sum(terms) / len(terms)


def hand_concept(z: torch.Tensor, labels: torch.Tensor) -> float:
    terms = []
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1]):
            logp = _log_softmax_row(z[b, t].tolist())
            terms += [-logp[int(j)] for j in labels[b, t] if j >= 0]
    return sum(terms) / len(terms)


def hand_kl(student: torch.Tensor, teacher: torch.Tensor) -> float:
    terms = []
    for b in range(student.shape[0]):
        for t in range(student.shape[1]):
            ls = _log_softmax_row(student[b, t].tolist())
            lt = _log_softmax_row(teacher[b, t].tolist())
            terms.append(sum(math.exp(a) * (a - c) for a, c in zip(lt, ls)))
    return sum(terms) / len(terms)


# ---- the loss terms -------------------------------------------------------------------------
def test_loss_terms_match_hand_computation_on_small_tensors():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(2, 3, 7, generator=g), torch.randint(0, 7, (2, 3), generator=g)
    z, labels = torch.randn(2, 3, 9, generator=g), torch.randint(0, 9, (2, 3, 4), generator=g)
    teacher = torch.randn(2, 3, 7, generator=g)
    assert ntp_loss(logits, y).item() == pytest.approx(hand_ce(logits, y), abs=1e-6)
    assert concept_loss(z, labels).item() == pytest.approx(hand_concept(z, labels), abs=1e-6)
    assert kd_loss(logits, teacher).item() == pytest.approx(hand_kl(logits, teacher), abs=1e-6)
    assert kd_loss(logits, logits).item() == pytest.approx(0.0, abs=1e-6)


def test_concept_loss_skips_missing_labels_and_equals_mean_of_per_label_ce():
    z = torch.tensor([[[2.0, 0.0, -1.0, 0.5]]])
    labels = torch.tensor([[[0, 3, -1, -1]]])
    logp = torch.log_softmax(z, -1)[0, 0]
    want = -(logp[0] + logp[3]).item() / 2
    assert concept_loss(z, labels).item() == pytest.approx(want, abs=1e-6)
    full = torch.tensor([[[0, 3, 1, 2]]])
    per_label = [torch.nn.functional.cross_entropy(z[0], full[0, :, j]) for j in range(4)]
    assert concept_loss(z, full).item() == pytest.approx(sum(per_label).item() / 4, abs=1e-6)


# ---- whole objectives on a real tiny model ----------------------------------------------------
@pytest.mark.parametrize("name", ["cocomix", "add"])
def test_concept_objectives_are_ntp_plus_lambda_concept_ce(name):
    obj, batch = get_objective(name), _batch()
    model = _model(obj.mix_mode)
    loss, parts = obj(model, batch, LossWeights(lam=0.1))
    logits, z = model(batch.x, return_concept_logits=True)
    want = hand_ce(logits, batch.y) + 0.1 * hand_concept(z, batch.labels)
    assert loss.item() == pytest.approx(want, abs=1e-5)
    assert set(parts) == {"ntp", "concept"}


@pytest.mark.parametrize("name", ["ntp", "pause", "mix_only"])
def test_ntp_only_objectives_ignore_labels(name):
    obj, batch = get_objective(name), _batch()
    model = _model(obj.mix_mode)
    loss, parts = obj(model, batch, LossWeights(lam=0.1))
    assert loss.item() == pytest.approx(hand_ce(model(batch.x), batch.y), abs=1e-5)
    assert set(parts) == {"ntp"}


def test_kd_is_ntp_plus_weighted_kl_teacher_to_student():
    obj, batch = get_objective("kd"), _batch()
    student, teacher = _model("none", seed=0), _model("none", seed=1)
    loss, _ = obj(student, batch, LossWeights(kd_weight=0.1, teacher=teacher))
    s, t = student(batch.x), teacher(batch.x)
    assert loss.item() == pytest.approx(hand_ce(s, batch.y) + 0.1 * hand_kl(s, t), abs=1e-5)
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())


def test_concept_only_mixes_nothing_and_trains_the_predictor():
    obj, batch = get_objective("concept_only"), _batch()
    model = _model("add")
    plain = CoCoMixModel(_cfg("none"))  # same backbone, no concept head
    plain.load_state_dict({k: v for k, v in model.state_dict().items()
                           if not k.startswith("concept.")})
    loss, _ = obj(model, batch, LossWeights(lam=0.1))
    _, z = model(batch.x, return_concept_logits=True)
    want = hand_ce(plain(batch.x), batch.y) + 0.1 * hand_concept(z, batch.labels)
    assert loss.item() == pytest.approx(want, abs=1e-5)
    loss.backward()
    assert model.concept.W_pred.grad.abs().sum() > 0
    assert model.concept.W_comp.grad.abs().sum() == 0  # in the graph, but nothing mixed
    assert not model.hook_dict["concept.hook_vector"].fwd_hooks  # the hook context closed


def test_registry_and_clear_errors():
    assert {"ntp", "cocomix", "kd", "pause", "concept_only", "mix_only", "add"} <= set(OBJECTIVES)
    assert get_objective("cocomix").mix_mode == "interleave"
    with pytest.raises(ValueError, match="unknown objective 'cocomx'"):
        get_objective("cocomx")
    b = _batch()
    with pytest.raises(ValueError, match="needs concept labels"):
        get_objective("cocomix")(_model("interleave"), Batch(b.x, b.y), LossWeights())
    with pytest.raises(ValueError, match="needs a teacher"):
        get_objective("kd")(_model("none"), b, LossWeights())
