"""ConceptExtractor: scores checked against hand-written formulas, finite differences and the
official full-backward computation, on tiny seeded teachers."""

import pytest
import torch
from helpers_concepts import HOOK, tiny_hooked_transformer, tiny_sae, tokens
from helpers_model import tiny_model

from cocomix_lens.concepts import METHODS, ConceptExtractor
from cocomix_lens.concepts.capture import IGNORE

EPS = 1e-5


def _hand_acts(sae, x, k):
    """The OpenAI TopK SAE by hand: layer-norm the input (unbiased std, eps on the std),
    subtract b_dec, encode, keep the top k, ReLU."""
    xn = (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-5)
    pre = (xn - sae.b_dec) @ sae.W_enc + sae.b_enc
    top = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu()), pre


def _hand_loss(logits, tok):
    """Mean next-token cross-entropy of one sequence, written out."""
    logp = logits.log_softmax(-1)
    return -logp[:, :-1].gather(-1, tok[:, 1:, None]).mean()


def _finite_difference_dots(teacher, sae, tok, pos):
    """<dL/dx_pos, d_c> for every latent c by central differences along d_c at `pos`."""
    d_sae = sae.cfg.d_sae
    out = torch.empty(d_sae, dtype=torch.float64)
    for c in range(d_sae):
        losses = []
        for sign in (1.0, -1.0):
            def nudge(act, hook, c=c, sign=sign):
                act = act.clone()
                act[0, pos] += sign * EPS * sae.W_dec[c].detach()
                return act
            with torch.no_grad(), teacher.hooks(fwd_hooks=[(HOOK, nudge)]):
                losses.append(_hand_loss(teacher(tok), tok))
        out[c] = (losses[0] - losses[1]) / (2 * EPS)
    return out


def test_each_method_matches_hand_formulas_and_finite_differences():
    teacher = tiny_hooked_transformer(dtype=torch.float64)
    sae = tiny_sae(k=5, dtype="float64")
    tok = tokens(1, 8)
    _, cache = teacher.run_with_cache(tok, names_filter=HOOK)
    with torch.no_grad():
        acts, pre = _hand_acts(sae, cache[HOOK], k=5)
    for pos in (2, 6):
        dots = _finite_difference_dots(teacher, sae, tok, pos)
        a, p = acts[0, pos], pre[0, pos]
        expected = {"attribution": a * dots, "attribution_preact": p * dots,
                    "attribution_abs": (a * dots).abs(), "attribution_neg": -(a * dots),
                    "activation": a}
        for name, want in expected.items():
            got = ConceptExtractor(teacher, sae, method=name).scores(tok)[0, pos]
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-8, msg=name)


def test_layer_norm_input_normalisation_is_honoured():
    teacher = tiny_hooked_transformer()
    tok = tokens()
    _, cache = teacher.run_with_cache(tok, names_filter=HOOK)
    x = cache[HOOK] * 3.0 + 1.0  # far from unit scale, so normalising matters
    with teacher.hooks(fwd_hooks=[(HOOK, lambda act, hook: act * 3.0 + 1.0)]):
        for norm in ("layer_norm", "none"):
            sae = tiny_sae(norm=norm)
            got = ConceptExtractor(teacher, sae, method="activation").scores(tok)
            with torch.no_grad():
                want = _hand_acts(sae, x, k=5)[0] if norm == "layer_norm" else sae.encode(x)
            torch.testing.assert_close(got, want)
    assert not torch.allclose(_hand_acts(sae, x, 5)[0], sae.encode(x))
    assert not hasattr(sae, "ln_std")  # encode()'s leftovers were cleaned up


@pytest.mark.parametrize("teacher_kind", ["hooked_transformer", "cocomix_none"])
@pytest.mark.parametrize("sae_kind", ["topk", "standard"])
def test_equals_the_official_full_backward_exactly(teacher_kind, sae_kind):
    if teacher_kind == "cocomix_none":
        teacher = tiny_model(mix_mode="none")
        sae = tiny_sae(sae_kind, d_in=teacher.cfg.d_model, hook="blocks.1.hook_resid_post")
        tok = tokens(2, 12) % teacher.cfg.d_vocab
    else:
        teacher, sae, tok = tiny_hooked_transformer(), tiny_sae(sae_kind), tokens(2, 12)
    for name in METHODS:
        fast = ConceptExtractor(teacher, sae, method=name)
        naive = ConceptExtractor(teacher, sae, method=name, backward="full")
        assert torch.equal(fast.scores(tok), naive.scores(tok)), name
        ids, vals = fast.labels(tok, k=4)
        ids_ref, vals_ref = naive.labels(tok, k=4)
        assert torch.equal(ids, ids_ref) and torch.equal(vals, vals_ref), name
    assert all(p.grad is None for p in teacher.parameters())


def test_no_teacher_parameter_has_grad_after_extraction():
    teacher = tiny_hooked_transformer()
    assert all(p.requires_grad for p in teacher.parameters())
    ids, _ = ConceptExtractor(teacher, tiny_sae()).labels(tokens(), k=4)
    assert ids.shape == (2, 10, 4) and ids.dtype == torch.int64
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.requires_grad for p in teacher.parameters())


def test_explicit_targets_give_the_last_position_real_scores():
    teacher, sae, tok = tiny_hooked_transformer(), tiny_sae(), tokens(1, 8)
    ex = ConceptExtractor(teacher, sae)
    shifted = torch.cat([tok[:, 1:], torch.full((1, 1), IGNORE)], dim=1)
    assert torch.equal(ex.scores(tok), ex.scores(tok, targets=shifted))
    assert (ex.scores(tok)[0, -1] == 0).all()  # no next token: no gradient there
    full = torch.cat([tok[:, 1:], torch.tensor([[3]])], dim=1)
    assert (ex.scores(tok, targets=full)[0, -1] != 0).any()


def test_attribution_map_and_heatmap_agree_with_scores():
    ex = ConceptExtractor(tiny_hooked_transformer(), tiny_sae())
    tok = tokens(1, 9)[0]
    scores = ex.scores(tok)[0]
    amap = ex.attribution_map(tok, k=3)
    top = scores.topk(3, dim=-1)
    real = top.values != 0
    assert torch.equal(amap.ids[real], top.indices[real]) and (amap.ids[~real] == -1).all()
    assert torch.equal(amap.scores, top.values)
    concept = int(amap.ids[4, 0])
    assert torch.equal(ex.concept_heatmap(tok, concept), scores[:, concept])
    with pytest.raises(ValueError, match="outside the SAE's latents"):
        ex.concept_heatmap(tok, 48)


def test_attribution_map_reports_no_zero_score_padding():
    ex = ConceptExtractor(tiny_hooked_transformer(), tiny_sae(k=5))
    tok = tokens(1, 9)[0]
    scores = ex.scores(tok)[0]
    amap = ex.attribution_map(tok, k=8)  # more places than the 5 latents a TopK SAE activates
    # zeros (inactive latents) outrank negative scores, so a position shows its positive ones
    n_positive = (scores > 0).sum(-1)
    assert (n_positive[:-1] < 5).any()  # the case that used to be padded with zero scores
    assert torch.equal(amap.valid.sum(-1), n_positive)
    assert n_positive[-1] == 0 and amap.concepts(8) == []  # the last token has no target
    assert (amap.scores[amap.valid] > 0).all() and (amap.scores[~amap.valid] == 0).all()
    for pos in range(8):
        positive = (scores[pos] > 0).nonzero().squeeze(-1)
        want = positive[scores[pos][positive].argsort(descending=True)].tolist()
        assert [c for c, _ in amap.concepts(pos)] == want


def test_sae_with_wrong_d_in_is_refused():
    with pytest.raises(ValueError, match=r"SAE d_in=24 does not match .* width 16"):
        ConceptExtractor(tiny_hooked_transformer(), tiny_sae(d_in=24))


def test_sae_on_a_hook_the_teacher_lacks_is_refused():
    with pytest.raises(ValueError, match="no hook 'blocks.7.hook_resid_post'"):
        ConceptExtractor(tiny_hooked_transformer(), tiny_sae(hook="blocks.7.hook_resid_post"))


def test_mixing_cocomix_teacher_is_refused():
    teacher = tiny_model()  # interleave
    with pytest.raises(ValueError, match="mix_mode='none'"):
        ConceptExtractor(teacher, tiny_sae(d_in=teacher.cfg.d_model))


def test_unknown_method_and_bad_k_are_refused():
    teacher, sae = tiny_hooked_transformer(), tiny_sae()
    with pytest.raises(ValueError, match="unknown attribution method"):
        ConceptExtractor(teacher, sae, method="gradient")
    with pytest.raises(ValueError, match="k=49"):
        ConceptExtractor(teacher, sae).labels(tokens(), k=49)
