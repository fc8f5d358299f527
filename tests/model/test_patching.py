"""TransformerLens's activation patching through PatchingView (model/patching.py): each result
equals a hand-written patch of the same token's rows."""

import pytest
import torch
from helpers_model import tiny_model, tokens

from cocomix_lens.model.hooks import patching
from cocomix_lens.model.patching import PatchingView, patch_concept

POS = 6


@pytest.fixture(scope="module")
def setup():
    model = tiny_model()
    clean, corrupted = tokens(pos=POS, seed=1), tokens(pos=POS, seed=2)
    _, cache = model.run_with_cache(clean)
    return model, clean, corrupted, cache


def metric(logits):
    return logits[:, -1, 3].mean() - logits[:, -1, 5].mean()


def by_hand(model, corrupted, cache, name, rows, index):
    """The metric with `name`'s rows `rows` (a slice on the position axis) at `index`
    replaced by the clean run's, hooked directly on the model."""
    clean = cache[name]

    def hook(act, hook):
        act = act.clone()
        act[(slice(None), rows, *index)] = clean[(slice(None), rows, *index)]
        return act

    with torch.no_grad():
        return metric(model.run_with_hooks(corrupted, fwd_hooks=[(name, hook)]))


def row(model, layer, pos, rows):
    """The stream row of token `pos` at block `layer` (doubled from insert_layer on)."""
    return pos if model.stream_factor(layer) == 1 else 2 * pos + (rows == "concepts")


@pytest.mark.parametrize("fn,hook", [(patching.get_act_patch_resid_pre, "hook_resid_pre"),
                                     (patching.get_act_patch_attn_out, "hook_attn_out"),
                                     (patching.get_act_patch_mlp_out, "hook_mlp_out")])
@pytest.mark.parametrize("rows", ["tokens", "concepts"])
def test_layer_pos_patching_matches_a_hand_written_patch(setup, fn, hook, rows):
    model, _, corrupted, cache = setup
    view = PatchingView(model, rows)
    out = fn(view, corrupted, view.clean(cache), metric)
    assert out.shape == (model.cfg.n_layers, POS)
    with torch.no_grad():
        unpatched = metric(model(corrupted))
    for layer in range(model.cfg.n_layers):
        for pos in range(POS):
            if rows == "concepts" and layer < model.cfg.insert_layer:
                expected = unpatched  # no concept slot below insert_layer: nothing patched
            else:
                expected = by_hand(model, corrupted, cache, f"blocks.{layer}.{hook}",
                                   row(model, layer, pos, rows), ())
            torch.testing.assert_close(out[layer, pos], expected, atol=1e-5, rtol=1e-5)


def test_head_patching_over_all_positions_takes_the_token_rows(setup):
    model, _, corrupted, cache = setup
    view = PatchingView(model)
    out = patching.get_act_patch_attn_head_out_all_pos(view, corrupted, view.clean(cache),
                                                       metric)
    assert out.shape == (model.cfg.n_layers, model.cfg.n_heads)
    for layer in range(model.cfg.n_layers):
        step = model.stream_factor(layer)
        for head in range(model.cfg.n_heads):
            expected = by_hand(model, corrupted, cache, f"blocks.{layer}.attn.hook_z",
                               slice(0, None, step), (head,))
            torch.testing.assert_close(out[layer, head], expected, atol=1e-5, rtol=1e-5)


def test_row_mapping_matters(setup):
    """The check can fail: patching the raw rows (TL's positions on the doubled stream)
    gives other numbers from insert_layer on."""
    model, _, corrupted, cache = setup
    layer = model.cfg.insert_layer + 1
    mapped = by_hand(model, corrupted, cache, f"blocks.{layer}.hook_resid_pre", 2 * 3, ())
    raw = by_hand(model, corrupted, cache, f"blocks.{layer}.hook_resid_pre", 3, ())
    assert abs(float(mapped - raw)) > 1e-4


@pytest.mark.parametrize("name", ["concept.hook_vector", "concept.hook_logits"])
def test_concept_patching_replaces_one_position_at_a_time(setup, name):
    model, _, corrupted, cache = setup
    out = patch_concept(model, corrupted, cache, metric, name)
    expected = torch.stack([by_hand(model, corrupted, cache, name, pos, ()) for pos in range(POS)])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert out.std() > 0  # positions differ: each patch changed something


def test_bad_rows_and_hooks_are_one_line_errors(setup):
    model, _, corrupted, cache = setup
    with pytest.raises(ValueError, match="rows='nope' is not one of"):
        PatchingView(model, "nope")
    with pytest.raises(ValueError, match="patches a concept.* hook of the model, not"):
        patch_concept(model, corrupted, cache, metric, "blocks.0.hook_resid_pre")
    with pytest.raises(ValueError, match="rows='concepts' needs an interleaved model"):
        PatchingView(tiny_model(mix_mode="none"), "concepts")
