"""Steering (cocomix_lens/steering): specs, each op's exact effect, cached == uncached, errors."""

import json
import math

import numpy as np
import pytest
import torch
from helpers_model import tiny_model, tiny_text_model, tokens

from cocomix_lens.steering import SteeringSpec, steer, transplant

HOOKS = ["concept.hook_logits", "concept.hook_acts", "concept.hook_vector"]
K = 5  # tiny_model's concept_top_k


def _run(model, x, spec=None, **steer_kwargs):
    """Concept logits, acts and vectors [batch, pos, ...] of a forward (steered if spec)."""
    if spec is None:
        _, cache = model.run_with_cache(x, names_filter=HOOKS)
    else:
        with steer(model, spec, **steer_kwargs):
            _, cache = model.run_with_cache(x, names_filter=HOOKS)
    return [cache[h] for h in HOOKS]


def _only_column_changed(before, after, concept, rows):
    """Everything equal except column `concept` at `rows`."""
    keep = torch.ones_like(before, dtype=torch.bool)
    keep[:, rows, concept] = False
    assert torch.equal(before[keep], after[keep])


def _negative_concept(z, pos):
    """A concept whose logit is negative at `pos` in every batch row."""
    return int(torch.nonzero((z[:, pos] < 0).all(0))[0])


def test_spec_round_trips_through_json_and_a_file(tmp_path):
    spec = (SteeringSpec().scale(3, 5.0).add(4, 2.0, positions="prompt", std=0.5)
            .force(7, positions=[2, 5]).ban(1, "generated").set([2, 9], [1.0, 3.0])
            .add_vector(5, 0.5).add_vector(None, 1.0, vector=[0.1] * 32))
    assert SteeringSpec.from_json(spec.to_json()) == spec
    assert SteeringSpec.load(spec.save(tmp_path / "spec.json")) == spec
    blob = json.loads((tmp_path / "spec.json").read_text())
    assert blob["edits"][2] == {"op": "force", "concept": 7, "positions": [2, 5]}


def test_numpy_integer_ids_become_ints_and_save_as_json(tmp_path):
    spec = (SteeringSpec().add(np.int64(4), 2.0, positions=np.arange(2, 4))
            .set(np.array([2, 9]), [1.0, 3.0]))
    assert spec == SteeringSpec().add(4, 2.0, positions=[2, 3]).set([2, 9], [1.0, 3.0])
    assert type(spec.edits[0].concept) is int and type(spec.edits[1].concepts[1]) is int
    assert SteeringSpec.load(spec.save(tmp_path / "spec.json")) == spec
    with pytest.raises(ValueError, match="integers >= 0"):
        SteeringSpec().add(np.float64(4.0), 2.0)


def test_scale_multiplies_only_that_logit_at_the_chosen_positions():
    model, x = tiny_model(), tokens()
    z, acts, _ = _run(model, x)
    z2, _, _ = _run(model, x, SteeringSpec().scale(11, 3.0, positions=[2, 4]))
    torch.testing.assert_close(z2[:, [2, 4], 11], 3.0 * z[:, [2, 4], 11])
    _only_column_changed(z, z2, 11, [2, 4])


def test_scale_pushes_a_negative_logit_further_out_of_the_top_k():
    model, x = tiny_model(), tokens()
    z, _, _ = _run(model, x)
    c = _negative_concept(z, 3)
    z2, acts2, _ = _run(model, x, SteeringSpec().scale(c, 8.0, positions=[3]))
    assert (z2[:, 3, c] < z[:, 3, c]).all() and (acts2[:, 3, c] == 0).all()
    _, acts3, _ = _run(model, x, SteeringSpec().force(c, positions=[3]))
    assert (acts3[:, 3, c] != 0).all()  # force works whatever the sign


def test_add_uses_the_given_std_or_the_std_its_unit_names():
    model, x = tiny_model(), tokens()
    z, _, _ = _run(model, x)
    z2, _, _ = _run(model, x, SteeringSpec().add(6, 2.0, std=0.25))
    torch.testing.assert_close(z2[..., 6], z[..., 6] + 0.5)
    _only_column_changed(z, z2, 6, slice(None))
    z1, _, _ = _run(model, x, SteeringSpec().add(6, 2.0, unit="logit"))
    torch.testing.assert_close(z1[..., 6], z[..., 6] + 2.0)
    spec = SteeringSpec().add(6, 2.0, positions="generated", unit="prompt")
    z3, _, _ = _run(model, x, spec, prompt_len=8)
    measured = z[:, :8, 6].std()
    torch.testing.assert_close(z3[:, 8:, 6], z[:, 8:, 6] + 2.0 * measured)
    _only_column_changed(z, z3, 6, slice(8, None))
    stds = torch.full((48,), 9.0)
    stds[6] = 0.15
    spec = SteeringSpec().add(6, 1.0).scale(2, 2.0).with_stds(stds)
    assert spec.edits[0].std == pytest.approx(0.15) and spec.edits[1].std is None
    z4, _, _ = _run(model, x, spec)
    torch.testing.assert_close(z4[..., 6], z[..., 6] + 0.15)
    with pytest.raises(ValueError, match=r"catalogue logit stds.*fix: spec.resolve\(run\)"):
        _run(model, x, SteeringSpec().add(6, 2.0))


def test_force_puts_the_concept_at_the_top_of_the_top_k_at_the_chosen_positions_only():
    model, x = tiny_model(), tokens()
    z, acts, _ = _run(model, x)
    c = _negative_concept(z, 4)
    z2, acts2, _ = _run(model, x, SteeringSpec().force(c, positions=[4, 6]))
    for p in (4, 6):
        assert (acts2[:, p, c] != 0).all() and ((acts2[:, p] != 0).sum(-1) == K).all()
        # it enters just above the strongest concept and displaces the weakest selected one;
        # the other k - 1 keep their values
        assert (acts2[:, p, c] > z[:, p].max(-1).values).all()
        torch.testing.assert_close(acts2[:, p, c], z[:, p].max(-1).values)
        weakest = acts[:, p].masked_fill(acts[:, p] == 0, float("inf")).argmin(-1)
        kept = acts[:, p].scatter(-1, weakest[:, None], 0.0)
        torch.testing.assert_close(acts2[:, p].scatter(-1, torch.full_like(weakest, c)[:, None],
                                                       0.0), kept)
    _only_column_changed(z, z2, c, [4, 6])
    others = [p for p in range(x.shape[1]) if p not in (4, 6)]
    assert torch.equal(acts2[:, others], acts[:, others])


def test_force_of_the_strongest_concept_changes_nothing():
    model, x = tiny_model(), tokens()
    z, acts, _ = _run(model, x)
    c = int(z[0, 3].argmax())
    pos = [3]
    z2, acts2, _ = _run(model, x, SteeringSpec().force(c, positions=pos))
    assert torch.equal(z2[0, 3], z[0, 3]) and torch.equal(acts2[0, 3], acts[0, 3])


def test_forcing_several_concepts_keeps_all_of_them():
    model, x = tiny_model(), tokens()
    z, _, _ = _run(model, x)
    lowest = z[0, 2].argsort()[:3].tolist()  # the three weakest logits of row 0
    spec = SteeringSpec()
    for c in lowest:
        spec = spec.force(c, positions=[2])
    _, acts2, _ = _run(model, x, spec)
    assert (acts2[:, 2, lowest] != 0).all() and ((acts2[:, 2] != 0).sum(-1) == K).all()


def test_ban_removes_the_concept_and_changes_only_its_logit():
    model, x = tiny_model(), tokens()
    z, acts, _ = _run(model, x)
    c = int(acts[0, 5].abs().argmax())
    z2, acts2, _ = _run(model, x, SteeringSpec().ban(c))
    assert (acts2[..., c] == 0).all() and (z2[..., c] == -math.inf).all()
    _only_column_changed(z, z2, c, slice(None))
    assert ((acts2 != 0).sum(-1) == K).all()


def test_set_replaces_the_top_k_at_the_chosen_positions():
    model, x = tiny_model(), tokens()
    z, acts, vec = _run(model, x)
    z2, acts2, vec2 = _run(model, x, SteeringSpec().set([3, 9], [4.0, -1.5], positions=[1, 7]))
    expected = torch.zeros_like(acts[:, 1])
    expected[:, 3], expected[:, 9] = 4.0, -1.5
    assert torch.equal(acts2[:, 1], expected) and torch.equal(acts2[:, 7], expected)
    others = [p for p in range(x.shape[1]) if p not in (1, 7)]
    assert torch.equal(acts2[:, others], acts[:, others]) and torch.equal(z2, z)
    torch.testing.assert_close(vec2[:, others], vec[:, others], atol=1e-6, rtol=1e-6)


def test_vector_adds_the_compressor_row_as_the_head_writes_it_or_a_given_vector():
    model, x = tiny_model(), tokens()
    _, cache = model.run_with_cache(x, names_filter=["concept.hook_in", HOOKS[2]])
    vec, sigma = cache[HOOKS[2]], cache["concept.hook_in"].std(-1, keepdim=True)
    _, _, vec2 = _run(model, x, SteeringSpec().add_vector(12, 2.5, positions="prompt", std=0.4),
                      prompt_len=4)
    # an activation rise of 2.5 stds (0.4 logits each) of concept 12: the head's output moves
    # by that times W_comp[12] times the position's residual std (c = (a W_comp + ...) * std)
    w = model.concept.W_comp[12].detach()
    torch.testing.assert_close(vec2[:, :4], vec[:, :4] + 2.5 * 0.4 * sigma[:, :4] * w)
    torch.testing.assert_close(vec2[:, 4:], vec[:, 4:])
    d = torch.linspace(-1, 1, model.cfg.d_model)
    _, _, vec3 = _run(model, x, SteeringSpec().add_vector(None, -1.0, [0], vector=d.tolist()))
    torch.testing.assert_close(vec3[:, 0], vec[:, 0] - d)
    torch.testing.assert_close(vec3[:, 1:], vec[:, 1:])


def test_edits_compose_in_the_documented_order():
    model, x = tiny_model(), tokens()
    z, _, _ = _run(model, x)
    spec = SteeringSpec().add(6, 1.0, std=2.0).scale(6, 3.0)  # listed add first, scale runs first
    z2, _, _ = _run(model, x, spec)
    torch.testing.assert_close(z2[..., 6], 3.0 * z[..., 6] + 2.0)


SPECS = {
    "scale": SteeringSpec().scale(7, 8.0),
    "add": SteeringSpec().add(7, 6.0, positions="generated", unit="prompt"),
    "force": SteeringSpec().force(7, positions="generated").force(2, positions=[3, 9]),
    "ban": SteeringSpec().ban(4),
    "set": SteeringSpec().set([1, 7], [30.0, -20.0], positions="generated"),
    "vector": SteeringSpec().add_vector(7, 40.0, unit="logit"),
}


@pytest.mark.parametrize("op", sorted(SPECS))
def test_steered_cached_generation_equals_uncached(op):
    model, prompt = tiny_model(), tokens(pos=6)
    spec = SPECS[op]
    cached = model.generate(prompt, 14, temperature=0, steering=spec)
    full = model.generate(prompt, 14, temperature=0, use_cache=False, steering=spec)
    assert torch.equal(cached, full)
    sampled = model.generate(prompt, 14, seed=5, steering=spec)
    assert torch.equal(sampled, model.generate(prompt, 14, seed=5, use_cache=False,
                                               steering=spec))
    with steer(model, spec):  # prompt_len defaults to the first forward's length: 6
        assert torch.equal(model.generate(prompt, 14, temperature=0), cached)
    streamed = torch.stack(list(model.stream(prompt, 14, temperature=0, steering=spec)), 1)
    assert torch.equal(streamed, cached[:, 6:])


def test_a_strong_edit_changes_generation_and_generated_positions_spare_the_first_token():
    model, prompt = tiny_model(), tokens(pos=6)
    free = model.generate(prompt, 12, temperature=0)
    spec = SteeringSpec().set([1, 7], [300.0, -200.0], positions="generated")
    steered = model.generate(prompt, 12, temperature=0, steering=spec)
    # slot t predicts token t + 1: the last prompt slot (unedited) picks the first new token
    assert torch.equal(steered[:, :7], free[:, :7]) and not torch.equal(steered, free)


def test_hooks_are_removed_on_exit_and_after_an_exception():
    model, x = tiny_model(), tokens()
    with pytest.raises(RuntimeError, match="boom"):
        with steer(model, SPECS["set"].add_vector(3, 1.0, unit="logit")):
            assert model._forward_pre_hooks
            raise RuntimeError("boom")
    assert not model._forward_pre_hooks
    assert all(not hp._forward_hooks for hp in model.hook_dict.values())
    z, _, _ = _run(model, x)
    assert torch.equal(model(x), model(x)) and z.isfinite().all()


BAD = [
    ({"op": "scale", "concept": 48, "value": 2.0}, "out of range.*fix"),
    ({"op": "scale", "concept": 3, "value": float("nan")}, "non-finite value.*fix"),
    ({"op": "add", "concept": 3, "value": float("inf")}, "non-finite value.*fix"),
    ({"op": "force", "concept": 3, "positions": [64]}, "position 64 is out of range.*fix"),
    ({"op": "force", "concept": 3, "positions": [-1]}, "indices >= 0.*fix"),
    ({"op": "ban", "concept": 3, "positions": "later"}, "positions='later'.*fix"),
    ({"op": "boost", "concept": 3}, "unknown steering op 'boost'.*fix"),
    ({"op": "vector", "value": 1.0, "vector": [0.5] * 31}, "31 values but d_model=32.*fix"),
    ({"op": "scale", "concept": 3}, "needs 'value'.*fix"),
    ({"op": "set", "concepts": [1, 2], "weights": [1.0]}, "as many weights.*fix"),
    ({"op": "scale", "concept": 3, "value": 2.0, "colour": "red"}, "unknown field.*fix"),
    ({"op": "scale", "concept": 3, "value": 2.0, "positions": 5}, "positions=5 must be.*fix"),
    ({"op": "scale", "concept": 3, "value": "2"}, "value must be a number.*fix"),
    ({"op": "set", "concepts": 3, "weights": [1.0]}, "concepts=3 must be a list.*fix"),
    ({"op": "force", "concept": 3, "positions": list(range(70000))}, "MAX_POSITIONS.*fix"),
]


@pytest.mark.parametrize(("edit", "message"), BAD)
def test_bad_specs_give_one_line_errors_naming_the_fix(edit, message):
    model = tiny_model()
    with pytest.raises(ValueError, match=message) as err:
        with steer(model, {"edits": [edit]}):
            pass
    assert "\n" not in str(err.value)
    assert not model._forward_pre_hooks


def test_spec_files_past_the_caps_or_not_utf8_are_refused_naming_the_file(tmp_path):
    from cocomix_lens.steering.spec import MAX_EDITS, MAX_SPEC_BYTES

    cases = {"many.json": SteeringSpec().scale(1, 2.0).to_dict() | {
                 "edits": [{"op": "scale", "concept": 1, "value": 2.0}] * (MAX_EDITS + 1)},
             "big.json": " " * MAX_SPEC_BYTES, "latin.json": b"\xff{}"}
    for name, blob in cases.items():
        path = tmp_path / name
        if isinstance(blob, dict):
            path.write_text(json.dumps(blob))
        else:
            path.write_bytes(blob if isinstance(blob, bytes) else blob.encode())
        with pytest.raises(ValueError, match="fix") as err:
            SteeringSpec.load(path)
        assert name in str(err.value) and "\n" not in str(err.value)


def test_validate_spec_checks_ids_against_the_model_and_stds_against_the_table():
    from cocomix_lens.steering import validate_spec

    cfg = tiny_model().cfg
    spec = SteeringSpec().add(cfg.n_concepts + 5, 2.0)
    with pytest.raises(ValueError, match=f"out of range.*0..{cfg.n_concepts - 1}"):
        validate_spec(spec, cfg)
    with pytest.raises(ValueError, match="out of range"):
        spec.with_stds([1.0] * cfg.n_concepts)  # not an IndexError / KeyError
    assert validate_spec(SteeringSpec().add(1, 2.0), cfg).edits[0].concept == 1


def test_steering_a_model_without_a_concept_head_is_refused():
    with pytest.raises(ValueError, match="no concept head; fix"):
        with steer(tiny_model(mix_mode="none"), SPECS["scale"]):
            pass


def test_transplant_patches_the_source_concept_vector_into_the_target():
    model = tiny_text_model()
    source, target = "Paris is the capital of France.", "The cat sat on the mat."
    spec = transplant(model, source, target, [-1, 2])
    # positions count the text's tokens; the prompt encoding puts <|endoftext|> first
    src = _run(model, model.to_tokens(source, prepend_bos=True))[2]
    ids = model.to_tokens(target, prepend_bos=True)
    patched = _run(model, ids, spec)[2]
    torch.testing.assert_close(patched[0, -1], src[0, -1], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(patched[0, 3], src[0, 3], atol=1e-6, rtol=1e-6)
    assert SteeringSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match="out of range.*fix"):
        transplant(model, source, target, [200])


def test_add_edits_take_the_catalogue_std_when_the_run_has_one():
    from types import SimpleNamespace

    stds = torch.full((48,), 0.5)
    stds[6] = 0.2
    run = SimpleNamespace(has=lambda piece: piece == "catalogue",
                          catalogue=SimpleNamespace(concepts={"logit_std": stds}))
    spec = SteeringSpec().add(6, 1.0).add(3, 1.0, std=2.0).scale(6, 2.0).add(4, 1.0,
                                                                            unit="prompt")
    filled = spec.resolve(run)
    assert [e.std for e in filled.edits] == [pytest.approx(0.2), 2.0, None, None]
    assert filled.edits[0].unit == "catalogue" and SteeringSpec.from_json(
        filled.to_json()) == filled
    no_catalogue = SimpleNamespace(has=lambda piece: False)
    assert spec.edits[1:].__len__() and SteeringSpec(spec.edits[1:]).resolve(
        no_catalogue) == SteeringSpec(spec.edits[1:])
    with pytest.raises(ValueError, match="no catalogue; fix"):
        spec.resolve(no_catalogue)


def test_the_top_k_rule_of_readers_is_the_heads_own_selection_ties_included():
    from cocomix_lens.model.concept import top_k_mask

    model, x = tiny_model(), tokens()
    z, acts, _ = _run(model, x)
    assert torch.equal(top_k_mask(z, K), acts != 0)
    tied = torch.tensor([[2.0, 1.0, 1.0, 1.0, 0.0]])
    assert top_k_mask(tied, 2).sum() == 2  # a `>= k-th value` rule would keep 4


def test_a_transplant_reports_its_effect_beside_random_edits_of_the_same_norm():
    from cocomix_lens.steering.transplant import transplant_effect

    model = tiny_text_model()
    target = "The cat sat on the mat."
    none = transplant_effect(model, transplant(model, target, target, [-1]), target,
                             n_controls=4)
    assert none.kl == pytest.approx(0.0, abs=1e-9) and none.p == 1.0
    assert "no effect beyond random directions" in none.summary()
    spec = transplant(model, "Paris is the capital of France.", target, [-1, -2])
    effect = transplant_effect(model, spec, target, n_controls=4)
    ids = model.to_tokens(target, prepend_bos=True)
    with torch.no_grad():
        base = model(ids)[0, -1].log_softmax(-1)
        with steer(model, spec):
            moved = model(ids)[0, -1].log_softmax(-1)
    assert effect.kl == pytest.approx(float((moved.exp() * (moved - base)).sum()), rel=1e-5)
    assert len(effect.control_kl) == 4
    assert effect.p == (1 + sum(c >= effect.kl for c in effect.control_kl)) / 5
