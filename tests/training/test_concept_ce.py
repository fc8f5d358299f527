"""The concept loss node gives the same loss and gradients as autograd on its plain graph."""

import pytest
import torch
from helpers_model import tiny_model, tokens

from cocomix_lens.model import concept as concept_module
from training import concept_ce, objectives
from training.concept_ce import ConceptCE, logsumexp_rows
from training.objectives import Batch, LossWeights, get_objective


def _plain_concept_loss(z, labels):
    # The graph concept_loss had before ConceptCE: autograd differentiates it op by op.
    valid = labels >= 0
    nll = z.logsumexp(dim=-1, keepdim=True) - z.gather(-1, labels.clamp(min=0))
    return (nll * valid).sum() / valid.sum().clamp(min=1)


def _labels(shape, n_concepts, seed=2):
    labels = torch.randint(0, n_concepts, shape, generator=torch.Generator().manual_seed(seed))
    labels[:, ::3, 1] = labels[:, ::3, 0]  # duplicate labels are summed first, in order
    labels[:, 1::3, 2:] = labels[:, 1::3, :1]
    labels[:, ::4, 3] = -1  # missing labels
    labels[:, ::5] = -1  # positions without any label
    return labels


@pytest.mark.parametrize("scale", [1.0, 0.1, -2.5])
def test_concept_ce_gradient_is_bitwise_autograd_of_the_plain_graph(scale):
    z0 = torch.randn(3, 10, 1001, generator=torch.Generator().manual_seed(1)) * 4
    labels = _labels((3, 10, 4), 1001)

    def run(fn):
        z = z0.clone().requires_grad_(True)
        loss = fn(z, labels)
        (scale * loss).backward()
        return loss.detach(), z.grad

    (loss, grad), (want_loss, want_grad) = run(ConceptCE.apply), run(_plain_concept_loss)
    assert torch.equal(loss, want_loss)
    assert torch.equal(grad, want_grad)


@pytest.mark.parametrize("objective", ["cocomix", "add", "concept_only", "mix_only"])
def test_training_gradients_are_bitwise_those_of_plain_autograd(objective, monkeypatch):
    # The whole model: concept loss and the head's topk as autograd differentiates them.
    def grads():
        model = tiny_model(mix_mode=get_objective(objective).mix_mode).train()
        x = tokens(pos=13)
        batch = Batch(x[:, :-1], x[:, 1:], _labels((2, 12, 4), model.cfg.n_concepts))
        loss, _ = get_objective(objective)(model, batch, LossWeights(), model)
        loss.backward()
        return loss.detach(), {n: p.grad for n, p in model.named_parameters()}

    loss, ours = grads()
    monkeypatch.setattr(objectives, "concept_loss", _plain_concept_loss)
    monkeypatch.setattr(concept_module, "top_k", lambda z, k: (z, *z.topk(k, dim=-1)))
    want_loss, plain = grads()
    assert torch.equal(loss, want_loss)
    assert ours.keys() == plain.keys()
    for name, g in plain.items():
        assert (g is None and ours[name] is None) or torch.equal(ours[name], g), name


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(3, 7, 1001), (2, 5, 64), (1, 1, 3000), (1, 5, 40000)])
def test_logsumexp_by_row_chunks_is_bitwise_torchs(shape, threads, monkeypatch):
    # Chunks of 2-3 rows with odd widths and a remainder that must not be a single row.
    monkeypatch.setattr(concept_ce, "LSE_CHUNK", 2500)
    z = torch.randn(shape, generator=torch.Generator().manual_seed(0)) * 5
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert torch.equal(logsumexp_rows(z), z.logsumexp(-1, keepdim=True))
    finally:
        torch.set_num_threads(before)
