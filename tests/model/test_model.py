"""CoCoMixModel forward semantics: interleaving, the concept head, attention paths, hooks."""

import pytest
import torch
import torch.nn.functional as F
from helpers_model import tiny_model, tokens
from sae_lens import TopKSAE, TopKSAEConfig
from sae_lens.saes.sae import SAEMetadata

from cocomix_lens.model import concept as concept_module
from cocomix_lens.model.concept import STD_EPS


def test_interleaved_stream_has_2T_positions_from_insert_layer():
    model, x = tiny_model(insert_layer=2), tokens(pos=7)
    _, cache = model.run_with_cache(x)
    assert cache["blocks.1.hook_resid_post"].shape[1] == 7
    assert cache["concept.hook_mixed"].shape[1] == 14
    assert cache["blocks.2.hook_resid_pre"].shape[1] == 14
    # Even slots are the tokens' residuals, odd slots their concept vectors.
    torch.testing.assert_close(cache["concept.hook_mixed"][:, 0::2], cache["concept.hook_in"])
    torch.testing.assert_close(cache["concept.hook_mixed"][:, 1::2], cache["concept.hook_vector"])


def test_perturbing_c_t_changes_only_c_t_and_later():
    model, x, t = tiny_model(), tokens(pos=9), 4
    _, clean = model.run_with_cache(x, names_filter="blocks.2.hook_resid_post")

    def bump(c, hook):
        c = c.clone()
        c[:, t] += 1.0
        return c

    with model.hooks(fwd_hooks=[("concept.hook_vector", bump)]):
        _, hit = model.run_with_cache(x, names_filter="blocks.2.hook_resid_post")
    a, b = clean["blocks.2.hook_resid_post"], hit["blocks.2.hook_resid_post"]
    slot = 2 * t + 1  # c_t
    torch.testing.assert_close(a[:, :slot], b[:, :slot], rtol=0, atol=0)  # h_<=t and c_<t
    assert (a[:, slot] - b[:, slot]).abs().max() > 1e-3


def test_concept_head_matches_official_formula():
    model, x = tiny_model(), tokens()
    logits, cache = model.run_with_cache(x)
    head, h = model.concept, cache["concept.hook_in"]
    mu, std = h.mean(-1, keepdim=True), h.std(-1, keepdim=True)
    z = ((h - mu) / (std + STD_EPS) - head.pre_bias) @ head.W_pred + head.b_pred
    torch.testing.assert_close(cache["concept.hook_logits"], z)
    vals, idx = z.topk(model.cfg.concept_top_k, -1)
    dense = torch.zeros_like(z).scatter(-1, idx, vals)
    c = (dense @ head.W_comp + head.b_comp + head.pre_bias) * std + mu
    torch.testing.assert_close(cache["concept.hook_vector"], c, atol=1e-5, rtol=1e-5)
    assert (cache["concept.hook_acts"] != 0).sum(-1).eq(model.cfg.concept_top_k).all()


@pytest.mark.parametrize("bmm_gather_max", [concept_module.BMM_GATHER_MAX, 0])
def test_gathered_compressor_equals_dense(monkeypatch, bmm_gather_max):
    monkeypatch.setattr(concept_module, "BMM_GATHER_MAX", bmm_gather_max)  # 0: embedding_bag
    model, x = tiny_model(), tokens()
    fast = model(x)
    model.concept.use_gather = False
    torch.testing.assert_close(model(x), fast, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mix_mode", ["interleave", "add", "pause", "none"])
def test_sdpa_equals_explicit_attention(mix_mode):
    model, x = tiny_model(mix_mode=mix_mode), tokens()
    fast = model(x)
    _, cache = model.run_with_cache(x, names_filter=lambda n: n.endswith("hook_pattern"))
    pattern = cache["blocks.2.attn.hook_pattern"]
    torch.testing.assert_close(pattern.sum(-1), torch.ones_like(pattern.sum(-1)))
    assert pattern.triu(1).abs().max() == 0  # causal
    model.use_sdpa = False
    torch.testing.assert_close(model(x), fast, atol=1e-5, rtol=1e-5)


def test_return_concept_logits_equals_hooked_logits():
    model, x = tiny_model(), tokens()
    logits, concept_logits = model(x, return_concept_logits=True)
    _, cache = model.run_with_cache(x, names_filter="concept.hook_logits")
    torch.testing.assert_close(concept_logits, cache["concept.hook_logits"])
    torch.testing.assert_close(logits, model(x))
    with pytest.raises(ValueError, match="needs a concept head"):
        tiny_model(mix_mode="none")(x, return_concept_logits=True)


def test_add_mode_adds_concept_vector_to_residual():
    model, x = tiny_model(mix_mode="add"), tokens()
    _, cache = model.run_with_cache(x)
    expected = cache["concept.hook_in"] + cache["concept.hook_vector"]
    torch.testing.assert_close(cache["concept.hook_mixed"], expected)


def test_steering_a_concept_logit_changes_the_next_token_distribution():
    model, x = tiny_model(), tokens()
    base = model(x)

    def scale(z, hook):
        z = z.clone()
        z[..., 3] = 10.0 * z[..., 3].abs() + 5.0  # force concept 3 into the top-k
        return z

    steered = model.run_with_hooks(x, fwd_hooks=[("concept.hook_logits", scale)])
    assert (steered - base).abs().max() > 1e-3
    torch.testing.assert_close(model(x), base)  # hooks removed on exit


def test_stop_at_layer_returns_the_residual_entering_that_block():
    model, x = tiny_model(), tokens()
    _, cache = model.run_with_cache(x, names_filter="blocks.2.hook_resid_pre")
    out = model(x, stop_at_layer=2)
    torch.testing.assert_close(out, cache["blocks.2.hook_resid_pre"])
    _, partial = model.run_with_cache(x, names_filter=["blocks.1.hook_resid_pre"],
                                      stop_at_layer=2, prepend_bos=False)
    torch.testing.assert_close(partial["blocks.1.hook_resid_pre"],
                               cache_at(model, x, "blocks.1.hook_resid_pre"))


def cache_at(model, x, name):
    return model.run_with_cache(x, names_filter=name)[1][name]


def test_sae_lens_sae_attaches_by_hook_name():
    model, x = tiny_model(), tokens()
    torch.manual_seed(0)
    name = "blocks.1.hook_resid_pre"
    sae = TopKSAE(TopKSAEConfig(d_in=32, d_sae=64, k=4, metadata=SAEMetadata(hook_name=name)))
    with torch.no_grad():
        for p in sae.parameters():
            p.normal_(0, 0.3)
    hook_name = sae.cfg.metadata.hook_name
    _, cache = model.run_with_cache(x, names_filter=hook_name, stop_at_layer=2)
    feats = sae.encode(cache[hook_name])
    assert (feats > 0).sum(-1).eq(4).all()

    def splice(act, hook):
        return sae(act)

    spliced = model.run_with_hooks(x, fwd_hooks=[(hook_name, splice)])
    assert (spliced - model(x)).abs().max() > 1e-3
    sae.use_error_term = True  # reconstruction + error = identity: logits unchanged
    torch.testing.assert_close(model.run_with_hooks(x, fwd_hooks=[(hook_name, splice)]),
                               model(x), atol=1e-5, rtol=1e-5)


def test_bad_tokens_and_overlong_inputs_are_refused():
    model = tiny_model()
    with pytest.raises(ValueError, match="integer ids"):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="exceed n_ctx"):
        model(torch.zeros(1, 65, dtype=torch.long))


@pytest.mark.parametrize("mix_mode", ["interleave", "add", "pause", "none"])
def test_each_mix_mode_head_agrees_with_its_config_entry(mix_mode):
    from cocomix_lens.config import MIX_MODES

    spec, model, x = MIX_MODES[mix_mode], tiny_model(mix_mode=mix_mode), tokens(pos=5)
    assert (model.concept is None) == (mix_mode not in concept_module.HEADS)
    if model.concept is None:
        assert not spec.concepts and not spec.doubles_stream
        return
    logits, cache = model.run_with_cache(x)
    assert cache["concept.hook_mixed"].shape[1] == (10 if spec.doubles_stream else 5)
    assert ("concept.hook_logits" in cache) == spec.concepts
    # readout keeps one position per token: the ones the LM head scores
    final = model.concept.readout(cache["blocks.2.hook_resid_post"])
    torch.testing.assert_close(logits, model.ln_final(final) @ model.W_U)


# ---- one block implementation: the reference computation, hooks watching or not -------------
def reference_logits(model, x):
    """The model's logits [batch, pos, d_vocab] written out from its weights with plain torch
    ops: F.layer_norm, explicit softmax attention, the official concept head, the mixers."""
    cfg = model.cfg

    def ln(h, mod):
        return F.layer_norm(h, (cfg.d_model,), mod.w, mod.b, cfg.layer_norm_eps)

    def block(h, blk):
        a, n = blk.attn, cfg.n_heads
        q, k, v = (ln(h, blk.ln1) @ a.W_QKV + a.b_QKV).chunk(3, dim=-1)
        q, k, v = (t.unflatten(-1, (n, cfg.d_head)).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / cfg.d_head ** 0.5
        causal = torch.ones(h.shape[1], h.shape[1], dtype=torch.bool).tril()
        z = scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v
        h = h + z.transpose(1, 2).flatten(2) @ a.W_O + a.b_O
        m = blk.mlp
        return h + F.gelu(ln(h, blk.ln2) @ m.W_in + m.b_in, approximate="tanh") @ m.W_out \
            + m.b_out

    h = model.W_E[x] + model.W_pos[: x.shape[1]]
    for i, blk in enumerate(model.blocks):
        if i == cfg.insert_layer and model.concept is not None:
            head = model.concept
            if cfg.mix_mode == "pause":
                c = head.pause_vector.expand_as(h)
            else:
                mu, std = h.mean(-1, keepdim=True), h.std(-1, keepdim=True)
                z = ((h - mu) / (std + STD_EPS) - head.pre_bias) @ head.W_pred + head.b_pred
                vals, idx = z.topk(cfg.concept_top_k, -1)
                acts = torch.zeros_like(z).scatter(-1, idx, vals)
                c = (acts @ head.W_comp + head.b_comp + head.pre_bias) * std + mu
            if cfg.mix_mode == "add":
                h = h + c
            else:  # (h1, c1, h2, c2, ...)
                h = torch.stack((h, c), dim=2).flatten(1, 2)
        h = block(h, blk)
    if cfg.doubles_stream:
        h = h[:, 1::2]  # the concept slots feed the LM head
    return ln(h, model.ln_final) @ model.W_U


@pytest.mark.parametrize("mix_mode", ["interleave", "add", "pause", "none"])
def test_logits_equal_a_reference_computation_from_the_weights(mix_mode):
    model, x = tiny_model(mix_mode=mix_mode), tokens()
    torch.testing.assert_close(model(x), reference_logits(model, x), atol=1e-6, rtol=1e-5)


def _watch_every_hook_point(model, seen=None):
    """An identity hook on every hook point: the model runs with everything watched."""
    def identity(act, hook):
        if seen is not None:
            seen.add(hook.name)
        return act

    return model.hooks(fwd_hooks=[(name, identity) for name in model.hook_dict])


@pytest.mark.parametrize("mix_mode", ["interleave", "add", "pause", "none"])
def test_watched_and_unwatched_forwards_give_the_same_logits(mix_mode):
    model, x = tiny_model(mix_mode=mix_mode), tokens()
    fast, seen = model(x), set()
    with _watch_every_hook_point(model, seen):
        slow = model(x)
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-6)
    assert seen == set(model.hook_dict)  # every hook point is called, none skipped


def test_watched_and_unwatched_forwards_give_the_same_gradients():
    model, x = tiny_model(), tokens()
    model.train()

    def grads():
        model.zero_grad()
        model(x).logsumexp(-1).mean().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    fast = grads()
    with _watch_every_hook_point(model):
        slow = grads()
    for name in fast:
        torch.testing.assert_close(fast[name], slow[name], atol=1e-6, rtol=1e-5, msg=name)


def test_raw_and_global_pytorch_hooks_fire_on_hook_points_and_modules():
    model, x = tiny_model(), tokens()
    calls = []
    block = model.blocks[0]
    handles = [block.hook_resid_mid.register_forward_hook(lambda m, i, o: calls.append("hp")),
               block.attn.register_forward_hook(lambda m, i, o: calls.append("attn"))]
    model(x)
    assert calls == ["attn", "hp"]
    for h in handles:
        h.remove()
    calls.clear()
    model(x)
    assert calls == []
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: calls.append(type(m).__name__))
    model(x)
    handle.remove()
    assert calls.count("HookPoint") == len(model.hook_dict)  # watched: dense acts, pattern too
    assert calls.count("TransformerBlock") == model.cfg.n_layers


def test_a_replaced_or_deleted_submodule_is_the_one_the_block_reads():
    model, x = tiny_model(), tokens()
    clean = model(x)
    block = model.blocks[1]
    mlp = block.mlp
    block.mlp = type(mlp)(model.cfg)  # empty weights: a different output
    torch.nn.init.zeros_(block.mlp.W_in), torch.nn.init.zeros_(block.mlp.W_out)
    assert block.mlp is block._modules["mlp"]
    assert (model(x) - clean).abs().max() > 1e-3
    del block.mlp
    with pytest.raises(AttributeError):
        block.mlp
    block.mlp = mlp
    torch.testing.assert_close(model(x), clean)


def test_hooks_inside_a_block_fire_and_edit():
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


def test_pos_offset_is_the_absolute_position_of_the_forwards_first_token():
    model, x = tiny_model(), tokens(batch=1, pos=6)
    seen = []
    record = ("concept.hook_logits", lambda z, hook: seen.append(model.pos_offset))
    cache = model.new_kv_cache(1)
    with model.hooks(fwd_hooks=[record]):
        model(x[:, :4], past_kv_cache=cache)
        model(x[:, 4:5], past_kv_cache=cache)
        model(x[:, 5:], past_kv_cache=cache)
        model(x)
    assert seen == [0, 4, 5, 0]


@pytest.mark.parametrize("loss_on_logits", [True, False])
def test_top_k_gradient_is_bitwise_plain_topk_gradient(loss_on_logits):
    # The head's topk node adds the values' gradient to the logits' other gradient; plain
    # torch.topk lets autograd add a dense scatter. Same bits, with and without that other use.
    g = torch.Generator().manual_seed(0)
    w, up = torch.randn(6, 33, generator=g), torch.randn(6, 5, generator=g)

    def grad(top_k):
        z = w.clone().requires_grad_(True)
        logits, vals, _ = top_k(z * 1.5, 5)
        loss = (vals * up).sum() + (logits.logsumexp(-1).sum() if loss_on_logits else 0)
        loss.backward()
        return z.grad

    plain = grad(lambda z, k: (z, *z.topk(k, dim=-1)))
    assert torch.equal(grad(concept_module.top_k), plain)
