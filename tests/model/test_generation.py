"""KV-cached generation: incremental steps equal full forwards; sampling options; streaming."""

import pytest
import torch
from helpers_model import tiny_model, tokens

from cocomix_lens.model.generation import NUCLEUS_K, nucleus_drop, sample_next


def _boost(z, hook):
    z = z.clone()
    z[..., 7] = z[..., 7].abs() * 10 + 3  # steer: push concept 7 into the top-k
    return z


CASES = [("interleave", False), ("interleave", True), ("add", False), ("add", True),
         ("none", False), ("pause", False)]


@pytest.mark.parametrize(("mix_mode", "hooked"), CASES)
def test_cached_steps_match_full_forward_on_prefix(mix_mode, hooked):
    model, seq = tiny_model(mix_mode=mix_mode), tokens(pos=20)
    hooks = [("concept.hook_logits", _boost)] if hooked else []
    with torch.no_grad(), model.hooks(fwd_hooks=hooks):
        cache = model.new_kv_cache(batch=2, max_tokens=20)
        step = model(seq[:, :8], past_kv_cache=cache)  # prefill
        torch.testing.assert_close(step, model(seq[:, :8]), atol=1e-5, rtol=1e-5)
        for t in range(8, 20):
            step = model(seq[:, t : t + 1], past_kv_cache=cache)[:, -1]
            full = model(seq[:, : t + 1])[:, -1]
            torch.testing.assert_close(step, full, atol=1e-5, rtol=1e-5)


def test_multi_token_chunk_after_cache_uses_a_bottom_right_causal_mask():
    model, seq = tiny_model(), tokens(pos=16)
    with torch.no_grad():
        cache = model.new_kv_cache(batch=2)
        model(seq[:, :5], past_kv_cache=cache)
        chunk = model(seq[:, 5:16], past_kv_cache=cache)
        torch.testing.assert_close(chunk, model(seq)[:, 5:], atol=1e-5, rtol=1e-5)


def test_greedy_generation_is_the_same_with_and_without_cache():
    model, prompt = tiny_model(), tokens(pos=6)
    cached = model.generate(prompt, 20, temperature=0)
    full = model.generate(prompt, 20, temperature=0, use_cache=False)
    assert torch.equal(cached, full)
    assert torch.equal(cached[:, :6], prompt)
    # Greedy: every new token is the argmax of a full forward on its prefix.
    logits = model(cached[:, :-1])
    assert torch.equal(logits[:, 5:].argmax(-1), cached[:, 6:])


def test_steering_hooks_apply_during_cached_generation():
    model, prompt = tiny_model(), tokens(pos=6)

    def force(z, hook):  # a strong edit, so greedy tokens of this random model change
        z = z.clone()
        z[..., 7] = 300.0
        return z

    with model.hooks(fwd_hooks=[("concept.hook_logits", force)]):
        steered = model.generate(prompt, 12, temperature=0)
        full = model.generate(prompt, 12, temperature=0, use_cache=False)
    assert torch.equal(steered, full)
    assert not torch.equal(steered, model.generate(prompt, 12, temperature=0))


def test_seeded_sampling_is_reproducible_and_stream_matches_generate():
    model, prompt = tiny_model(), tokens(pos=4)
    a = model.generate(prompt, 10, temperature=1.0, top_k=20, seed=3)
    b = model.generate(prompt, 10, temperature=1.0, top_k=20, seed=3)
    assert torch.equal(a, b)
    streamed = torch.stack(list(model.stream(prompt, 10, top_k=20, seed=3)), 1)
    assert torch.equal(streamed, a[:, 4:])


def test_top_k_and_top_p_restrict_the_support():
    logits = torch.tensor([[4.0, 3.0, 2.0, -1.0, -2.0]]).repeat(500, 1)
    gen = torch.Generator().manual_seed(0)
    assert set(sample_next(logits, 1.0, 2, None, gen).tolist()) == {0, 1}
    # probs ~ [0.66, 0.24, 0.09, ...]: top_p=0.8 keeps the first two tokens only.
    assert set(sample_next(logits, 1.0, None, 0.8, gen).tolist()) == {0, 1}
    assert set(sample_next(logits, 1.0, None, 0.5, gen).tolist()) == {0}
    assert sample_next(logits, 0, None, None, gen).eq(0).all()


@pytest.mark.parametrize("scale", [8.0, 0.01])  # peaked rows (nucleus in the top 64) and flat
def test_the_nucleus_equals_a_full_sort_of_the_vocabulary(scale):
    logits = torch.randn(40, 1000, generator=torch.Generator().manual_seed(1)) * scale
    for top_p in (0.5, 0.9, 0.95):
        sorted_logits, order = logits.sort(-1, descending=True)
        p = sorted_logits.softmax(-1)
        drop_sorted = (p.cumsum(-1) - p) >= top_p
        expected = drop_sorted.scatter(-1, order, drop_sorted)
        assert torch.equal(nucleus_drop(logits, top_p), expected)
    kept = (~nucleus_drop(logits, 0.95)).sum(-1)
    assert bool((kept < NUCLEUS_K).all()) if scale > 1 else bool((kept > NUCLEUS_K).all())


def test_stop_tokens_end_generation_and_pad_finished_rows():
    model, prompt = tiny_model(), tokens(batch=1, pos=4)
    free = model.generate(prompt, 10, temperature=0)
    stop = int(free[0, 7])
    out = model.generate(prompt, 10, temperature=0, stop_tokens=[stop])
    first = (free[0, 4:] == stop).nonzero()[0].item()
    assert out.shape[1] == 4 + first + 1 and out[0, -1] == stop


def test_generation_arguments_are_validated():
    model, prompt = tiny_model(), tokens(pos=4)
    with pytest.raises(ValueError, match="exceeds n_ctx"):
        model.generate(prompt, 100)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(prompt, 2, temperature=-1)
    with pytest.raises(ValueError, match="top_p"):
        model.generate(prompt, 2, top_p=0)
