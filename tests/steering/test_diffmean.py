"""DiffMean directions (cocomix_lens/steering/diffmean.py): a planted topic direction is
recovered, and adding a direction inside the context changes the activation by exactly it."""

import numpy as np
import pytest
import torch
from helpers_model import tiny_model, tokens

from cocomix_lens.steering.diffmean import accumulate_means, random_direction
from cocomix_lens.steering.method import residual_method

HOOK = "blocks.0.hook_resid_pre"


def planted(seed: int = 0):
    """A tiny model whose embedding of tokens 0..9 (topic "b") is shifted by a unit v."""
    model = tiny_model(seed)
    v = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(5))
    v = v / v.norm()
    with torch.no_grad():
        model.embed.W_E[:10] += v
    x = tokens(batch=32, pos=24, seed=2)
    labels = (x < 10).long().numpy()  # index 1 = "b", 0 = "a"
    return model, x, labels, v


def test_diffmean_recovers_a_planted_topic_direction():
    model, x, labels, v = planted()
    means = accumulate_means(model, x, labels, ["a", "b"], [HOOK, "blocks.1.hook_resid_pre"],
                             batch_size=8)
    d = torch.from_numpy(means.diffmean(HOOK, "b"))
    assert torch.nn.functional.cosine_similarity(d, v, dim=0) > 0.95
    assert abs(float(d.norm()) - 1.0) < 0.2
    # the other label's direction is the opposite one, and counts add up to all tokens
    assert np.allclose(means.diffmean(HOOK, "a"), -means.diffmean(HOOK, "b"), atol=1e-5)
    assert means.counts[HOOK].sum() == x.numel()
    # the interleaved stream (block 1 >= insert_layer) has two rows per token
    assert means.counts["blocks.1.hook_resid_pre"].sum() == 2 * x.numel()


def test_unlabelled_tokens_are_left_out_of_the_means():
    model, x, labels, _ = planted()
    labels[:, ::2] = -1
    means = accumulate_means(model, x, labels, ["a", "b"], [HOOK])
    assert means.counts[HOOK].sum() == x.numel() // 2


def test_a_residual_method_adds_exactly_the_vector_and_only_inside_the_block():
    model, x, _, v = planted()
    _, before = model.run_with_cache(x[:2], names_filter="blocks.1.hook_resid_pre")
    with residual_method(HOOK, v, "planted", strength=3.0).context(model, x.shape[1]):
        _, inside = model.run_with_cache(x[:2], names_filter=HOOK)
        steered = model(x[:2])
    _, after = model.run_with_cache(x[:2], names_filter=HOOK)
    assert torch.allclose(inside[HOOK] - after[HOOK], (3.0 * v).expand_as(after[HOOK]),
                          atol=1e-5)
    assert not torch.allclose(steered, model(x[:2]))
    assert before["blocks.1.hook_resid_pre"].shape[1] == 2 * x.shape[1]


def test_random_direction_matches_the_norm_and_is_seeded():
    like = np.arange(8, dtype=np.float32)
    r = random_direction(like, seed=3)
    assert np.isclose(np.linalg.norm(r), np.linalg.norm(like), rtol=1e-5)
    assert np.array_equal(r, random_direction(like, seed=3))
    assert not np.array_equal(r, random_direction(like, seed=4))


def test_latent_means_equal_accumulate_means_labelled_by_the_saes_own_activity(micro_run):
    """`latent_means` (one pass for many latents) gives per latent what `accumulate_means`
    gives with each token labelled active / not by the teacher's SAE."""
    from cocomix_lens import Run
    from cocomix_lens.concepts.extractor import ConceptExtractor
    from cocomix_lens.steering.diffmean import latent_means

    run = Run.open(micro_run[1])
    hooks = ["blocks.0.hook_resid_post", "concept.hook_vector"]
    latents = [3, 7]
    means = latent_means(run, latents, hooks, n_tokens=512, seq_len=32)
    x, _ = run.shards.batch("train", np.arange(16) * 32, 32)
    with torch.no_grad():
        acts = ConceptExtractor(run.teacher, run.sae, method="activation").scores(x)
    for c in latents:
        labels = (acts[..., c] <= 0).long().numpy()  # 0: active, 1: rest
        ref = accumulate_means(run.student, x, labels, [str(c), "rest"], hooks)
        for h in hooks:
            assert np.array_equal(means[c].counts[h], ref.counts[h])
            assert np.allclose(means[c].diffmean(h, str(c)), ref.diffmean(h, str(c)),
                               atol=1e-5)


@pytest.mark.parametrize("hook", [HOOK, "blocks.1.hook_resid_pre"])  # 1 and 2 rows per token
@pytest.mark.parametrize("positions", ["generated", "new_tokens:3"])
def test_a_residual_method_at_positions_adds_at_those_tokens_cached_or_not(hook, positions):
    model, x, _, v = planted()
    prompt_len = 5
    _, free = model.run_with_cache(x[:2], names_filter=hook)
    m = residual_method(hook, v, "planted", strength=3.0, positions=positions)
    with m.context(model, prompt_len):
        _, inside = model.run_with_cache(x[:2], names_filter=hook)
    moved = (inside[hook] - free[hook]).norm(dim=-1)[0]  # [rows]
    per = moved.shape[0] // x.shape[1]
    first, last = (prompt_len, x.shape[1]) if positions == "generated" else (
        prompt_len - 1, prompt_len + 2)
    expected = torch.zeros(x.shape[1], dtype=torch.bool)
    expected[first:last] = True
    assert torch.equal(moved > 1e-4, expected.repeat_interleave(per))
    prompt = x[:1, :prompt_len]
    with m.context(model, prompt_len):
        cached = model.generate(prompt, 8, seed=3)
    with m.context(model, prompt_len):
        assert torch.equal(cached, model.generate(prompt, 8, seed=3, use_cache=False))


def test_a_residual_method_refuses_positions_it_cannot_place():
    for bad in ("sentences", "prompt", "later:2"):
        with pytest.raises(ValueError, match="fix: 'all', 'generated' or 'new_tokens:n'"):
            residual_method(HOOK, torch.ones(4), "x", positions=bad)
