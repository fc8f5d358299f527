"""The unobserved fast path of a block: same numbers and gradients as the hooked path, and
taken only when nothing watches the block."""

import pytest
import torch
from helpers_model import tiny_model, tokens

from cocomix_lens.model.fused import is_unobserved


def _force_hooked_path(model):
    """A no-op hook inside every block, so each block runs its hooked path."""
    names = [f"blocks.{i}.mlp.hook_post" for i in range(model.cfg.n_layers)]
    return model.hooks(fwd_hooks=[(n, lambda act, hook: act) for n in names])


@pytest.mark.parametrize("mix_mode", ["interleave", "add", "pause", "none"])
def test_unobserved_blocks_give_the_hooked_paths_logits(mix_mode):
    model, x = tiny_model(mix_mode=mix_mode), tokens()
    fast = model(x)
    with _force_hooked_path(model):
        slow = model(x)
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-6)


def test_unobserved_blocks_give_the_hooked_paths_gradients():
    model, x = tiny_model(), tokens()
    model.train()

    def grads():
        model.zero_grad()
        model(x).logsumexp(-1).mean().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    fast = grads()
    with _force_hooked_path(model):
        slow = grads()
    for name in fast:
        torch.testing.assert_close(fast[name], slow[name], atol=1e-6, rtol=1e-5, msg=name)


def test_any_hook_inside_a_block_makes_it_observed():
    model = tiny_model()
    block = model.blocks[0]
    assert is_unobserved(block._inner)
    with model.hooks(fwd_hooks=[("blocks.0.attn.hook_v", lambda act, hook: act)]):
        assert not is_unobserved(block._inner)
        assert is_unobserved(model.blocks[1]._inner)
    with model.hooks(bwd_hooks=[("blocks.0.hook_resid_mid", lambda grad, hook: None)]):
        assert not is_unobserved(block._inner)
    handle = block.attn.register_forward_hook(lambda mod, inp, out: None)  # raw PyTorch hook
    assert not is_unobserved(block._inner)
    handle.remove()
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: None)
    assert not is_unobserved(block._inner)
    handle.remove()
    assert is_unobserved(block._inner)


def test_hooks_inside_a_block_still_fire_and_edit():
    model, x = tiny_model(), tokens()
    seen = []

    def zero_mlp(act, hook):
        seen.append(hook.name)
        return torch.zeros_like(act)

    clean = model(x)
    with model.hooks(fwd_hooks=[("blocks.2.hook_mlp_out", zero_mlp)]):
        edited = model(x)
    assert seen == ["blocks.2.hook_mlp_out"]
    assert (clean - edited).abs().max() > 1e-3


def test_cached_forward_with_grad_enabled_keeps_the_unembedding_differentiable():
    model, x = tiny_model(), tokens(batch=1)
    cache = model.new_kv_cache(1)
    logits = model(x, past_kv_cache=cache)
    logits.sum().backward()
    grad_cached = model.W_E.grad.clone()
    model.zero_grad()
    model(x).sum().backward()
    torch.testing.assert_close(grad_cached, model.W_E.grad)


def test_backward_hooks_inside_a_block_receive_the_gradient():
    model, x = tiny_model(), tokens()
    grads = []
    with model.hooks(bwd_hooks=[("blocks.0.hook_resid_mid", lambda g, hook: grads.append(g))]):
        model(x).logsumexp(-1).mean().backward()
    assert len(grads) == 1 and grads[0].shape == (2, 12, 32)
    assert grads[0].abs().sum() > 0
