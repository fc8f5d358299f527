"""ActivationCache for CoCoMixModel (model/lens.py): TL residual decomposition on either row set."""

import pytest
import torch
from helpers_model import tiny_model, tokens

from cocomix_lens.model.lens import concept_rows, split_cache, token_rows


def _next_token_logits(logits, x):
    """Logit of each position's actual next token (the last position scores token 0)."""
    nxt = torch.cat([x[:, 1:], torch.zeros_like(x[:, :1])], dim=1)
    return nxt, logits.gather(-1, nxt[..., None])[..., 0]


def test_cache_is_an_activation_cache_indexed_like_transformer_lens():
    model, x = tiny_model(), tokens()
    _, cache = model.run_with_cache(x)
    assert torch.equal(cache["resid_post", 1], cache["blocks.1.hook_resid_post"])
    assert torch.equal(cache["resid_post", -1], cache["blocks.2.hook_resid_post"])
    assert cache["resid_post", 1].shape[1] == 2 * x.shape[1]  # interleaved from insert_layer


def test_ln_scales_are_what_each_layernorm_divided_by():
    model, x = tiny_model(), tokens()
    _, cache = model.run_with_cache(x)
    resid = cache["blocks.1.hook_resid_pre"]
    normalized = cache["blocks.1.ln1.hook_normalized"]
    centered = resid - resid.mean(-1, keepdim=True)
    torch.testing.assert_close(centered / cache["blocks.1.ln1.hook_scale"], normalized)
    final = concept_rows(cache["blocks.2.hook_resid_post"])
    centered = final - final.mean(-1, keepdim=True)
    torch.testing.assert_close(centered / cache["ln_final.hook_scale"],
                               cache["ln_final.hook_normalized"])


def test_concept_rows_logit_attributions_sum_to_the_logits():
    model, x = tiny_model(), tokens()
    logits, cache = model.run_with_cache(x)
    _, concepts = split_cache(cache)
    stack, labels = concepts.decompose_resid(return_labels=True)
    assert labels[0] == "embed" and len(labels) == 2 + 2 * model.cfg.n_layers
    nxt, expected = _next_token_logits(logits, x)
    attrs = concepts.logit_attrs(stack, tokens=nxt)  # [component, batch, pos]
    torch.testing.assert_close(attrs.sum(0) + concepts.model.b_U[nxt], expected,
                               atol=1e-5, rtol=1e-5)
    # Layers below insert_layer add nothing to a concept row; c_t is its "embedding".
    assert attrs[2:2 * model.cfg.insert_layer + 2].abs().max() == 0
    torch.testing.assert_close(concepts["hook_embed"], cache["concept.hook_vector"])


def test_accumulated_resid_of_concept_rows_is_a_logit_lens_ending_at_the_logits():
    model, x = tiny_model(), tokens()
    logits, cache = model.run_with_cache(x)
    tok_view, concepts = split_cache(cache)
    accum = concepts.accumulated_resid(apply_ln=True)  # [n_layers + 1, batch, pos, d_model]
    assert accum.shape == (model.cfg.n_layers + 1, *x.shape, model.cfg.d_model)
    view = concepts.model
    torch.testing.assert_close(accum[-1] @ view.W_U + view.b_U, logits, atol=1e-5, rtol=1e-5)
    tok_accum = tok_view.accumulated_resid()
    torch.testing.assert_close(tok_accum[-1], token_rows(cache["blocks.2.hook_resid_post"]))
    torch.testing.assert_close(tok_accum[0], cache["blocks.0.hook_resid_pre"])


def test_token_rows_decompose_exactly_into_their_components():
    model, x = tiny_model(), tokens()
    _, cache = model.run_with_cache(x)
    tok_view, _ = split_cache(cache)
    for layer in range(model.cfg.n_layers + 1):
        parts = tok_view.decompose_resid(layer=layer).sum(0)
        resid = tok_view.accumulated_resid(layer=layer)[-1]
        torch.testing.assert_close(parts, resid, atol=1e-5, rtol=1e-5)


def test_split_keeps_key_positions_of_attention_patterns():
    model, x = tiny_model(), tokens()
    _, cache = model.run_with_cache(x, names_filter=lambda n: n.endswith("hook_pattern"))
    tok_view, concepts = split_cache(cache)
    full = cache["blocks.2.attn.hook_pattern"]  # [batch, heads, 2 pos, 2 pos]
    torch.testing.assert_close(concepts["blocks.2.attn.hook_pattern"], full[:, :, 1::2])
    torch.testing.assert_close(tok_view["blocks.2.attn.hook_pattern"], full[:, :, 0::2])


@pytest.mark.parametrize("mix_mode", ["none", "add"])
def test_one_stream_models_decompose_without_a_split(mix_mode):
    model, x = tiny_model(mix_mode=mix_mode), tokens()
    logits, cache = model.run_with_cache(x)
    nxt, expected = _next_token_logits(logits, x)
    stack = cache.decompose_resid()
    if mix_mode == "add":  # c_t joins the stream outside any block: add it as a component
        stack = torch.cat([stack, cache["concept.hook_vector"][None]])
    attrs = cache.logit_attrs(stack, tokens=nxt)
    torch.testing.assert_close(attrs.sum(0) + cache.model.b_U[nxt], expected,
                               atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="needs no split"):
        split_cache(cache)


@pytest.mark.parametrize("method", ["accumulated_resid", "decompose_resid", "stack_head_results",
                                    "get_full_resid_decomposition", "stack_activation"])
def test_stacking_the_unsplit_interleaved_cache_names_split_cache(method):
    model, x = tiny_model(), tokens()
    _, cache = model.run_with_cache(x)
    with pytest.raises(ValueError, match=rf"^ActivationCache\.{method} cannot stack this "
                                         r"interleaved cache .*fix: tokens, concepts = "
                                         r"cocomix_lens\.model\.lens\.split_cache\(cache\)"):
        getattr(cache, method)(*(["resid_post"] if method == "stack_activation" else []))
    # below insert_layer nothing is doubled: the same call works
    assert cache.decompose_resid(layer=1).shape[-2] == x.shape[1]


@pytest.mark.parametrize("view", [0, 1])  # token rows, concept rows
@pytest.mark.parametrize("expand_neurons", [True, False])
def test_per_head_and_per_neuron_decomposition_sums_to_the_residual(view, expand_neurons):
    model, x = tiny_model(), tokens()
    _, cache = model.run_with_cache(x)
    rows = split_cache(cache)[view]
    parts, labels = rows.get_full_resid_decomposition(expand_neurons=expand_neurons,
                                                      return_labels=True)
    cfg = model.cfg
    n_neurons = cfg.n_layers * cfg.d_mlp if expand_neurons else cfg.n_layers
    assert len(labels) == parts.shape[0] == cfg.n_layers * cfg.n_heads + n_neurons + 3
    torch.testing.assert_close(parts.sum(0), rows["resid_post", -1], atol=1e-5, rtol=1e-5)
    # each block's heads (+ b_O where the rows went through the block) give its attn_out
    heads = rows.stack_head_results().unflatten(0, (cfg.n_layers, cfg.n_heads)).sum(1)
    for layer in range(cfg.n_layers):
        through = view == 0 or layer >= cfg.insert_layer
        expected = rows["attn_out", layer] - (model.blocks[layer].attn.b_O if through else 0)
        torch.testing.assert_close(heads[layer], expected, atol=1e-5, rtol=1e-5)
