"""positions "new_tokens" (spec.START_SET): the first `span` slots from the prompt's last token
on, i.e. the slots that predict the first `span` generated tokens; the rest is unsteered."""

import pytest
import torch
from helpers_model import tiny_text_model

from cocomix_lens.steering import SteeringSpec, steer
from cocomix_lens.steering.spec import parse_position_label, position_label

PROMPT = "The cat sat on the mat. The dog"


@pytest.mark.parametrize("span", [None, 1, 3])
def test_new_tokens_edit_exactly_the_slots_from_the_prompts_last_token_on(span):
    model = tiny_text_model()
    ids = model.to_tokens(PROMPT + " ran after the cat and the bird", prepend_bos=True)
    prompt_len = 6
    spec = SteeringSpec().add(7, 50.0, positions="new_tokens", unit="logit", span=span)
    with torch.no_grad():
        _, free = model.run_with_cache(ids, names_filter="concept.hook_logits")
        with steer(model, spec, prompt_len=prompt_len):
            _, steered = model.run_with_cache(ids, names_filter="concept.hook_logits")
    z, z2 = free["concept.hook_logits"][0], steered["concept.hook_logits"][0]
    edited = torch.nonzero(z2[:, 7] != z[:, 7]).flatten().tolist()
    assert edited == list(range(prompt_len - 1, prompt_len - 1 + (span or 1)))
    torch.testing.assert_close(z2[edited, 7], z[edited, 7] + 50.0)


def test_new_tokens_generation_equals_the_same_edit_at_absolute_indices_cached_or_not():
    model = tiny_text_model()
    prompt = model.to_tokens(PROMPT, prepend_bos=True)
    n = prompt.shape[1]
    relative = SteeringSpec().add_vector(7, 40.0, positions="new_tokens", unit="logit", span=4)
    absolute = SteeringSpec().add_vector(7, 40.0, positions=tuple(range(n - 1, n + 3)),
                                         unit="logit")
    free = model.generate(prompt, 12, seed=3)
    cached = model.generate(prompt, 12, seed=3, steering=relative)
    assert torch.equal(cached, model.generate(prompt, 12, seed=3, steering=absolute))
    assert torch.equal(cached, model.generate(prompt, 12, seed=3, use_cache=False,
                                              steering=relative))
    with torch.no_grad():  # the edit reaches the next-token logits, from the first new token
        with steer(model, relative, prompt_len=n):
            steered = model(cached[:, :-1])
        plain = model(cached[:, :-1])
    moved = (steered - plain).abs().amax(-1)[0]
    assert bool((moved[n - 1:n + 3] > 1e-3).all()) and float(moved[: n - 1].max()) == 0.0
    assert torch.equal(free[:, :n], cached[:, :n])


def test_new_tokens_round_trip_and_describe_themselves(tmp_path):
    spec = SteeringSpec().add(3, 8.0, positions="new_tokens", std=0.5, span=4)
    assert SteeringSpec.load(spec.save(tmp_path / "s.json")) == spec
    assert "at the first 4 new tokens, then released" in spec.describe()
    assert parse_position_label("new_tokens:4") == ("new_tokens", 4)
    assert position_label("new_tokens", 4) == "new_tokens:4"
