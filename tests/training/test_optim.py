"""AdamW groups decay weight matrices only; the schedule warms up then cosines to 10 %."""

import math

import pytest
import torch

from cocomix_lens import CoCoMixConfig, CoCoMixModel
from training.config import OptimSection
from training.optim import build_optimizer, build_scheduler, lr_factor, param_groups, warmup_steps


def _model(**kw) -> CoCoMixModel:
    torch.manual_seed(0)
    return CoCoMixModel(CoCoMixConfig(d_model=16, n_layers=2, n_heads=2, d_vocab=31, n_ctx=8,
                                      insert_layer=1, n_concepts=12, concept_top_k=3, **kw))


def test_decay_only_on_weight_matrices():
    model = _model(tie_word_embeddings=False)
    names = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = param_groups(model, 0.1)
    leaf = {names[id(p)].split(".")[-1] for p in decay["params"]}
    assert leaf == {"W_QKV", "W_O", "W_in", "W_out", "W_pred", "W_comp"}
    skipped = {names[id(p)].split(".")[-1] for p in no_decay["params"]}
    assert {"W_E", "W_pos", "W_U", "w", "b", "b_QKV", "pre_bias", "b_pred"} <= skipped
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    n_all = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for g in (decay, no_decay) for p in g["params"]) == n_all


def test_adamw_settings_and_decay_effect():
    model = _model()
    opt = build_optimizer(model, OptimSection(lr=1e-2))
    assert opt.defaults["betas"] == (0.9, 0.95) and opt.defaults["eps"] == 1e-8
    w, e = model.blocks[0].mlp.W_in, model.embed.W_E
    w0, e0 = w.detach().clone(), e.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # zero gradient: only weight decay moves weights
    opt.step()
    assert torch.allclose(w, w0 * (1 - 1e-2 * 0.1))
    assert torch.equal(e, e0)


def test_schedule_warmup_then_cosine_to_ten_percent():
    cfg = OptimSection(lr=1e-3, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    opt = build_optimizer(_model(), cfg)
    sched = build_scheduler(opt, cfg)
    lrs = []
    for _ in range(cfg.max_steps + 5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1e-4)  # step 0 already trains at 1/warmup of the peak
    assert lrs[9] == pytest.approx(1e-3) and lrs[10] == pytest.approx(1e-3)
    assert lrs[60] == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # half-way down the cosine
    assert lrs[110] == pytest.approx(1e-4) and lrs[114] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_default_warmup_is_one_three_hundredth():
    assert warmup_steps(OptimSection(max_steps=40000)) == 134
    assert warmup_steps(OptimSection(max_steps=10)) == 1
    assert lr_factor(0, warmup=1, max_steps=10, min_ratio=0.1) == pytest.approx(1.0)
    assert lr_factor(5, warmup=0, max_steps=10, min_ratio=0.1) == pytest.approx(
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
