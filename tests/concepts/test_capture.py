"""Gradient at the SAE hook: the efficient backward equals the official full backward."""

import torch
from helpers_concepts import HOOK, tiny_hooked_transformer, tokens

from cocomix_lens.concepts.capture import (
    IGNORE,
    activation_at,
    grad_at_hook,
    grad_full_backward,
    next_token_targets,
    sequence_mean_ce,
)


def test_hook_backward_equals_full_backward_bit_for_bit():
    teacher = tiny_hooked_transformer()
    tok = tokens(3, 12)
    targets = next_token_targets(tok)
    x_fast, g_fast = grad_at_hook(teacher, HOOK, tok, targets)
    x_ref, g_ref = grad_full_backward(teacher, HOOK, tok, targets)
    assert torch.equal(x_fast, x_ref)
    assert torch.equal(g_fast, g_ref)
    assert g_fast.abs().sum() > 0


def test_hook_backward_leaves_no_parameter_grad_and_keeps_flags():
    teacher = tiny_hooked_transformer()
    teacher.blocks[0].attn.W_Q.requires_grad_(False)  # a caller's own choice survives
    flags = {n: p.requires_grad for n, p in teacher.named_parameters()}
    tok = tokens()
    grad_at_hook(teacher, HOOK, tok, next_token_targets(tok))
    assert all(p.grad is None for p in teacher.parameters())
    assert {n: p.requires_grad for n, p in teacher.named_parameters()} == flags


def test_full_backward_restores_existing_parameter_grads():
    teacher = tiny_hooked_transformer()
    marker = torch.full_like(teacher.W_U, 7.0)
    teacher.W_U.grad = marker
    tok = tokens()
    grad_full_backward(teacher, HOOK, tok, next_token_targets(tok))
    assert teacher.W_U.grad is marker
    assert teacher.blocks[0].attn.W_Q.grad is None


def test_nothing_below_the_hook_is_recorded_for_autograd():
    teacher = tiny_hooked_transformer()
    seen = {}

    def probe(act, hook):
        seen[hook.name] = act.requires_grad

    names = ["blocks.0.hook_resid_post", "blocks.2.hook_resid_post"]
    tok = tokens()
    with teacher.hooks(fwd_hooks=[(n, probe) for n in names]):
        grad_at_hook(teacher, HOOK, tok, next_token_targets(tok))
    assert seen == {"blocks.0.hook_resid_post": False, "blocks.2.hook_resid_post": True}


def test_activation_at_stops_the_forward_after_the_hook():
    teacher = tiny_hooked_transformer()
    later = []
    tok = tokens()
    with teacher.hooks(fwd_hooks=[("blocks.2.hook_resid_pre", lambda a, hook: later.append(1))]):
        x = activation_at(teacher, HOOK, tok)
    _, cache = teacher.run_with_cache(tok, names_filter=HOOK)
    assert later == [] and torch.equal(x, cache[HOOK])


def test_sequence_mean_ce_is_the_sum_of_per_sequence_means():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 5, generator=g)
    targets = torch.tensor([[1, 4, IGNORE], [0, 2, 3]])
    logp = logits.log_softmax(-1)
    seq0 = -(logp[0, 0, 1] + logp[0, 1, 4]) / 2
    seq1 = -(logp[1, 0, 0] + logp[1, 1, 2] + logp[1, 2, 3]) / 3
    torch.testing.assert_close(sequence_mean_ce(logits, targets), seq0 + seq1)


def test_next_token_targets_shift_and_ignore_the_last_position():
    assert next_token_targets(torch.tensor([[5, 6, 7]])).tolist() == [[6, 7, IGNORE]]
