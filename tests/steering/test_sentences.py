"""Sentence positions of steering edits (cocomix_lens/steering/sentences.py): the first `span`
slots of each sentence, read off the tokens as they are generated."""

import pytest
import torch
from helpers_model import tiny_text_model

from cocomix_lens.steering import SteeringSpec, steer
from cocomix_lens.steering.sentences import sentence_end_table, since_sentence_end
from cocomix_lens.steering.spec import parse_position_label, position_label

TEXTS = ["The cat sat on the mat. The dog ran after the cat. Paris is",
         "One, two, three: counting numbers is fun. Berlin is the capital of"]


def _since_by_loop(row: list[int], ends: torch.Tensor) -> list[int]:
    """Tokens since the last sentence end at or before each position, one at a time."""
    out, since = [], 1  # a virtual end before the first token
    for t in row:
        since = 0 if ends[t] else since + 1
        out.append(since)
    return out


def _expected_slots(model, ids: torch.Tensor, span: int, first: int = 0) -> torch.Tensor:
    """bool [batch, pos]: slot t edited when fewer than `span` tokens passed since the last
    sentence end at or before t, from position `first` on (a direct computation)."""
    ends = sentence_end_table(model)
    since = torch.tensor([_since_by_loop(r.tolist(), ends) for r in ids])
    mask = since < span
    mask[:, :first] = False
    return mask


def _encode(model, texts):
    rows = [model.to_tokens(t, prepend_bos=True)[0] for t in texts]
    n = min(len(r) for r in rows)
    return torch.stack([r[:n] for r in rows])


def test_the_count_since_a_sentence_end_matches_a_loop_in_one_chunk_or_many():
    model = tiny_text_model()
    ids, ends = _encode(model, TEXTS), sentence_end_table(model)
    whole, _ = since_sentence_end(ids, ends, None)
    expected = torch.tensor([_since_by_loop(r.tolist(), ends) for r in ids])
    assert torch.equal(whole, expected) and bool((whole == 0).any())
    carry, parts = None, []
    for chunk in ids.split([5, 1, 1, 4, ids.shape[1] - 11], dim=1):
        part, carry = since_sentence_end(chunk, ends, carry)
        parts.append(part)
    assert torch.equal(torch.cat(parts, 1), expected)


@pytest.mark.parametrize(("positions", "span"), [("sentences", None), ("sentences", 3),
                                                 ("new_sentences", 2)])
def test_sentence_positions_edit_exactly_the_first_slots_of_each_sentence(positions, span):
    model = tiny_text_model()
    ids = _encode(model, TEXTS)
    prompt_len = 9
    spec = SteeringSpec().add(7, 50.0, positions=positions, unit="logit", span=span)
    with torch.no_grad():
        _, free = model.run_with_cache(ids, names_filter="concept.hook_logits")
        with steer(model, spec, prompt_len=prompt_len):
            _, steered = model.run_with_cache(ids, names_filter="concept.hook_logits")
    z, z2 = free["concept.hook_logits"], steered["concept.hook_logits"]
    first = prompt_len - 1 if positions == "new_sentences" else 0
    expected = _expected_slots(model, ids, span or 1, first)
    assert torch.equal(z2[..., 7] != z[..., 7], expected) and bool(expected.any())
    torch.testing.assert_close(z2[..., 7][expected], z[..., 7][expected] + 50.0)
    other = torch.ones_like(z, dtype=torch.bool)
    other[..., 7] = False
    assert torch.equal(z[other], z2[other])


@pytest.mark.parametrize("spec", [
    SteeringSpec().add_vector(7, 40.0, positions="new_sentences", unit="logit", span=2),
    SteeringSpec().set([1, 7], [30.0, -20.0], positions="sentences").ban(3, "sentences", 2)])
def test_steered_cached_generation_equals_uncached_at_sentence_positions(spec):
    model = tiny_text_model()
    prompt = model.to_tokens("The cat sat on the mat.", prepend_bos=True)  # ends a sentence
    cached = model.generate(prompt, 16, temperature=0, steering=spec)
    assert torch.equal(cached, model.generate(prompt, 16, temperature=0, use_cache=False,
                                              steering=spec))
    sampled = model.generate(prompt, 16, seed=3, steering=spec)
    assert torch.equal(sampled, model.generate(prompt, 16, seed=3, use_cache=False,
                                               steering=spec))


def test_a_span_round_trips_and_reads_as_a_position_label(tmp_path):
    spec = (SteeringSpec().add(3, 2.0, positions="new_sentences", std=0.5, span=3)
            .ban(4, "sentences"))
    assert SteeringSpec.load(spec.save(tmp_path / "s.json")) == spec
    assert spec.to_dict()["edits"][0]["span"] == 3 and "span" not in spec.to_dict()["edits"][1]
    assert "first 3 slots of each sentence from the prompt's end on" in spec.describe()
    for label, parsed in [("new_sentences:3", ("new_sentences", 3)), ("all", ("all", None)),
                          ("0,3,5", ((0, 3, 5), None)), ("sentences", ("sentences", None))]:
        assert parse_position_label(label) == parsed
        assert position_label(*parsed) == label


@pytest.mark.parametrize(("edit", "message"), [
    ({"op": "ban", "concept": 3, "positions": "generated", "span": 2}, "needs positions.*fix"),
    ({"op": "ban", "concept": 3, "positions": "sentences", "span": 0}, "integer >= 1.*fix"),
    ({"op": "ban", "concept": 3, "positions": "sentences", "span": 1.5}, "integer >= 1.*fix")])
def test_a_bad_span_gives_a_one_line_error_naming_the_fix(edit, message):
    with pytest.raises(ValueError, match=message) as err:
        SteeringSpec.from_dict({"edits": [edit]})
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="positions 'later:2'"):
        parse_position_label("later:2")
