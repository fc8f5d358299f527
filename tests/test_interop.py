"""Interop: Hugging Face GPT-2 parity and the official CoCoMix state-dict names."""

import pytest
import torch
from helpers_model import tiny_model, tokens
from transformers import GPT2Config, GPT2LMHeadModel

from cocomix_lens.interop import from_hf_gpt2, from_official_state_dict, to_official_state_dict


def _hf_gpt2(seed=0):
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=97, n_positions=64, n_embd=32, n_layer=3, n_head=4,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    hf = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # HF inits biases/LN to constants; randomise to test every tensor
        for name, p in hf.named_parameters():
            if "ln" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return hf


def test_mix_mode_none_equals_hf_gpt2_logits():
    hf, x = _hf_gpt2(), tokens()
    ours = from_hf_gpt2(hf).eval()
    with torch.no_grad():
        expected = hf(x).logits
    torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-5)
    ours.use_sdpa = False
    torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-5)


def test_hf_greedy_generation_matches():
    hf, x = _hf_gpt2(), tokens(pos=5)
    ours = from_hf_gpt2(hf)
    hf_out = hf.generate(x, max_new_tokens=10, do_sample=False, pad_token_id=0,
                         attention_mask=torch.ones_like(x))
    assert torch.equal(ours.generate(x, 10, temperature=0), hf_out)


@pytest.mark.parametrize("mix_mode", ["interleave", "add", "none"])
def test_official_state_dict_round_trip(mix_mode):
    model, x = tiny_model(mix_mode=mix_mode), tokens()
    sd = to_official_state_dict(model)
    assert "lm_head.weight" in sd and "transformer.h.2.mlp.c_fc.weight" in sd
    if mix_mode != "none":
        assert sd["transformer.concept_predictor.weight"].shape == (48, 32)  # nn.Linear [out, in]
        assert sd["transformer.compress_layer.weight"].shape == (32, 48)
    back = from_official_state_dict(sd, model.cfg)
    assert torch.equal(back(x), model(x))


def test_official_state_dict_with_wrong_config_is_refused():
    model = tiny_model()
    sd = to_official_state_dict(model)
    with pytest.raises(ValueError, match="lacks .* tensor"):
        from_official_state_dict(sd, model.cfg.replace(n_layers=4, insert_layer=1))
    with pytest.raises(ValueError, match="checkpoint shape"):
        from_official_state_dict(sd, model.cfg.replace(n_concepts=40))


def test_plain_model_converts_to_hooked_transformer_with_equal_logits():
    from helpers_model import tiny_text_model
    from sae_lens import HookedSAETransformer

    from cocomix_lens.interop import to_hooked_transformer
    from cocomix_lens.model.hooks import HookedTransformer

    ours = tiny_text_model(mix_mode="none")
    x = ours.to_tokens("The cat sat on the mat.")
    for cls in (HookedTransformer, HookedSAETransformer):
        tl = to_hooked_transformer(ours, cls)
        assert isinstance(tl, cls)
        torch.testing.assert_close(tl(x), ours(x), atol=1e-5, rtol=1e-5)
        assert torch.equal(tl.to_tokens("The cat sat on the mat."), x)  # no BOS, same ids
    with pytest.raises(ValueError, match="mix_mode 'none'.*fix"):
        to_hooked_transformer(tiny_model())
