"""Text in, text out (model/text.py): TransformerLens tokenizer idioms and return types."""

import pytest
import torch
import torch.nn.functional as F
from helpers_model import tiny_model, tiny_text_model, tiny_tokenizer

from cocomix_lens.data.tokenizer import eos_id

TEXT = "The cat sat on the mat."


def test_to_tokens_round_trips_through_to_string_and_str_tokens():
    model = tiny_text_model()
    toks = model.to_tokens(TEXT)
    assert toks.shape[0] == 1 and toks.dtype == torch.long
    assert toks[0].tolist() == tiny_tokenizer().encode(TEXT).ids  # no BOS is prepended
    assert model.to_string(toks[0]) == TEXT
    assert model.to_string(toks) == [TEXT]
    pieces = model.to_str_tokens(TEXT)
    assert "".join(pieces) == TEXT and len(pieces) == toks.shape[1]
    assert model.to_str_tokens(toks) == pieces


def test_to_tokens_pads_a_batch_with_endoftext_on_the_right():
    model, eos = tiny_text_model(), eos_id(tiny_tokenizer())
    short = model.to_tokens("The cat")[0].tolist()
    batch = model.to_tokens([TEXT, "The cat"])
    assert batch[1, : len(short)].tolist() == short
    assert (batch[1, len(short):] == eos).all()
    left = model.to_tokens([TEXT, "The cat"], padding_side="left")
    assert left[1, -len(short):].tolist() == short


def test_to_single_token_accepts_one_token_and_names_the_pieces_otherwise():
    model = tiny_text_model()
    i = model.to_single_token(" cat")
    assert model.to_single_str_token(i) == " cat"
    with pytest.raises(ValueError, match="not one; fix"):
        model.to_single_token("The cat sat")


def test_text_methods_without_a_tokenizer_say_how_to_attach_one():
    model = tiny_model()
    for call in (lambda: model.to_tokens("x"), lambda: model("x"),
                 lambda: model.generate("x", 2)):
        with pytest.raises(ValueError, match="no tokenizer attached; fix"):
            call()


def test_forward_on_text_equals_forward_on_its_tokens():
    model = tiny_text_model()
    torch.testing.assert_close(model(TEXT), model(model.to_tokens(TEXT)))


def test_loss_is_mean_next_token_cross_entropy():
    model = tiny_text_model()
    toks = model.to_tokens(TEXT)
    logits = model(toks)
    expected = F.cross_entropy(logits[0, :-1], toks[0, 1:])
    torch.testing.assert_close(model(TEXT, return_type="loss"), expected)
    both_logits, both_loss = model(TEXT, return_type="both")
    torch.testing.assert_close(both_logits, logits)
    torch.testing.assert_close(both_loss, expected)
    per_token = model(TEXT, return_type="loss", loss_per_token=True)
    assert per_token.shape == (1, toks.shape[1] - 1)
    torch.testing.assert_close(per_token.mean(), expected)
    assert model(TEXT, return_type=None) is None
    with pytest.raises(ValueError, match="return_type='probs'.*fix"):
        model(TEXT, return_type="probs")


def test_batch_loss_leaves_the_padding_out():
    model = tiny_text_model()
    texts = [TEXT, "Paris is the capital"]
    short = model.to_tokens(texts[1])
    logits = model(short)
    ce_short = F.cross_entropy(logits[0, :-1], short[0, 1:], reduction="sum")
    long = model.to_tokens(texts[0])
    ce_long = F.cross_entropy(model(long)[0, :-1], long[0, 1:], reduction="sum")
    n = (short.shape[1] - 1) + (long.shape[1] - 1)
    torch.testing.assert_close(model(texts, return_type="loss"), (ce_short + ce_long) / n)


def test_run_with_cache_backward_caches_gradients_of_the_loss():
    model = tiny_text_model()
    loss, cache = model.run_with_cache(TEXT, return_type="loss", incl_bwd=True)
    assert loss.ndim == 0
    grad = cache["blocks.0.hook_resid_post_grad"]
    assert grad.shape == cache["resid_post", 0].shape and grad.abs().sum() > 0


def test_generate_on_text_returns_prompt_plus_text_cut_before_a_stop_token():
    model = tiny_text_model()
    n = model.to_tokens(TEXT).shape[1]
    ids = model.generate(model.to_tokens(TEXT), 6, temperature=0, stop_at_eos=False)
    assert model.generate(TEXT, 6, temperature=0, stop_at_eos=False) == model.to_string(ids[0])
    third = int(ids[0, n + 2])
    first_hit = n + int((ids[0, n:] == third).nonzero()[0])
    out = model.generate(TEXT, 6, temperature=0, stop_tokens=[third])
    assert out == model.to_string(ids[0, :first_hit])


def test_generate_stops_at_endoftext_by_default():
    model = tiny_text_model(tie_word_embeddings=False)
    eos = eos_id(tiny_tokenizer())
    with torch.no_grad():  # make <|endoftext|> the greedy next token everywhere
        model.ln_final.w[0], model.ln_final.b[0] = 0.0, 1.0
        model.unembed.W_U[:, eos] = 0.0
        model.unembed.W_U[0, eos] = 1e3
    assert model.generate(TEXT, 6, temperature=0) == TEXT
    toks = model.generate(model.to_tokens(TEXT), 6, temperature=0)
    assert toks[0, -1] == eos and toks.shape[1] == model.to_tokens(TEXT).shape[1] + 1
    kept = model.generate(TEXT, 3, temperature=0, stop_at_eos=False)
    assert kept == TEXT + "<|endoftext|>" * 3


def test_stream_yields_text_pieces_that_join_to_generate():
    model = tiny_text_model()
    pieces = list(model.stream(TEXT, 12, temperature=0))
    assert all(isinstance(p, str) for p in pieces)
    assert TEXT + "".join(pieces) == model.generate(TEXT, 12, temperature=0)
    ids = list(model.stream(model.to_tokens(TEXT), 12, temperature=0))
    assert all(isinstance(i, torch.Tensor) for i in ids)


def test_generate_on_a_list_returns_one_text_per_prompt():
    model = tiny_text_model()
    prompts = [TEXT, "Paris is"]
    outs = model.generate(prompts, 5, temperature=0)
    assert outs == [model.generate(p, 5, temperature=0) for p in prompts]
    assert model.generate(TEXT, 5, temperature=0, return_type="tokens").shape[0] == 1
