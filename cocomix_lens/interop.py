"""Parameter-name maps to and from the official CoCoMix code and Hugging Face GPT-2.

The official `GPT2CoCoMixLMHeadModel` (facebookresearch/RAM, projects/cocomix) keeps HF GPT-2
names (Conv1D weights stored [in, out], which is our layout) and adds
`transformer.pre_bias`, `transformer.concept_predictor` and `transformer.compress_layer`
(nn.Linear, stored [out, in], so they are transposed here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import torch
from torch import Tensor

from cocomix_lens.config import MIX_MODES, CoCoMixConfig
from cocomix_lens.model import CoCoMixModel

_T = Callable[[Tensor], Tensor]
_same: _T = lambda t: t  # noqa: E731
_transpose: _T = lambda t: t.T.contiguous()  # noqa: E731
# HF buffers that are not parameters (causal-mask caches in older transformers).
_HF_BUFFERS = (".attn.bias", ".attn.masked_bias")


def _block_map(i: int) -> Iterator[tuple[str, str, _T]]:
    ours, hf = f"blocks.{i}", f"transformer.h.{i}"
    yield f"{ours}.ln1.w", f"{hf}.ln_1.weight", _same
    yield f"{ours}.ln1.b", f"{hf}.ln_1.bias", _same
    yield f"{ours}.attn.W_QKV", f"{hf}.attn.c_attn.weight", _same
    yield f"{ours}.attn.b_QKV", f"{hf}.attn.c_attn.bias", _same
    yield f"{ours}.attn.W_O", f"{hf}.attn.c_proj.weight", _same
    yield f"{ours}.attn.b_O", f"{hf}.attn.c_proj.bias", _same
    yield f"{ours}.ln2.w", f"{hf}.ln_2.weight", _same
    yield f"{ours}.ln2.b", f"{hf}.ln_2.bias", _same
    yield f"{ours}.mlp.W_in", f"{hf}.mlp.c_fc.weight", _same
    yield f"{ours}.mlp.b_in", f"{hf}.mlp.c_fc.bias", _same
    yield f"{ours}.mlp.W_out", f"{hf}.mlp.c_proj.weight", _same
    yield f"{ours}.mlp.b_out", f"{hf}.mlp.c_proj.bias", _same


def _name_map(cfg: CoCoMixConfig) -> list[tuple[str, str, _T]]:
    """(our name, official name, our->official transform); transforms are self-inverse."""
    rows = [("embed.W_E", "transformer.wte.weight", _same),
            ("pos_embed.W_pos", "transformer.wpe.weight", _same)]
    for i in range(cfg.n_layers):
        rows.extend(_block_map(i))
    rows += [("ln_final.w", "transformer.ln_f.weight", _same),
             ("ln_final.b", "transformer.ln_f.bias", _same)]
    if cfg.has_concepts:
        rows += [("concept.pre_bias", "transformer.pre_bias", _same),
                 ("concept.W_pred", "transformer.concept_predictor.weight", _transpose),
                 ("concept.b_pred", "transformer.concept_predictor.bias", _same),
                 ("concept.W_comp", "transformer.compress_layer.weight", _transpose),
                 ("concept.b_comp", "transformer.compress_layer.bias", _same)]
    if not cfg.tie_word_embeddings:
        rows.append(("unembed.W_U", "lm_head.weight", _transpose))
    return rows


def _check_mode(cfg: CoCoMixConfig) -> None:
    if not MIX_MODES[cfg.mix_mode].official:
        official = "/".join(m for m, spec in MIX_MODES.items() if spec.official)
        raise ValueError(f"mix_mode={cfg.mix_mode!r} has no official counterpart; use {official}")


def to_official_state_dict(model: CoCoMixModel) -> dict[str, Tensor]:
    """Our parameters under the official GPT2CoCoMixLMHeadModel names (lm_head included)."""
    _check_mode(model.cfg)
    ours = model.state_dict()
    out = {theirs: fn(ours[name].detach()).clone() for name, theirs, fn in _name_map(model.cfg)}
    if model.cfg.tie_word_embeddings:
        out["lm_head.weight"] = out["transformer.wte.weight"]
    return out


def from_official_state_dict(state_dict: Mapping[str, Tensor],
                             config: CoCoMixConfig) -> CoCoMixModel:
    """Build a CoCoMixModel from an official (or HF GPT-2) state dict and a matching config."""
    _check_mode(config)
    missing = [theirs for _, theirs, _ in _name_map(config) if theirs not in state_dict]
    if missing:
        raise ValueError(
            f"state dict lacks {len(missing)} tensor(s) the config needs, e.g. {missing[:3]}; "
            "check that mix_mode / n_layers match the checkpoint"
        )
    model = CoCoMixModel(config)
    ours = {name: fn(state_dict[theirs]) for name, theirs, fn in _name_map(config)}
    expected = model.state_dict()
    for name, t in ours.items():
        if t.shape != expected[name].shape:
            raise ValueError(
                f"{name}: checkpoint shape {tuple(t.shape)} != config shape "
                f"{tuple(expected[name].shape)}; build the config from the checkpoint's sizes"
            )
    model.load_state_dict(ours)
    return model


def from_hf_gpt2(hf_model_or_state_dict, config: CoCoMixConfig | None = None) -> CoCoMixModel:
    """A mix_mode="none" CoCoMixModel from a HF `GPT2LMHeadModel` (or its state dict).

    With a model the config is read from `hf_model.config`; with a bare state dict pass it.
    """
    if isinstance(hf_model_or_state_dict, torch.nn.Module):
        hf = hf_model_or_state_dict
        config = config or config_from_hf_gpt2(hf.config)
        state = hf.state_dict()
    else:
        if config is None:
            raise ValueError("from_hf_gpt2 with a state dict needs config=CoCoMixConfig(...)")
        state = hf_model_or_state_dict
    if config.mix_mode != "none":
        raise ValueError(
            f"from_hf_gpt2 builds plain GPT-2 (mix_mode='none'), got {config.mix_mode!r}"
        )
    state = {k: v for k, v in state.items() if not k.endswith(_HF_BUFFERS)}
    return from_official_state_dict(state, config)


def config_from_hf_gpt2(hf_config) -> CoCoMixConfig:
    """CoCoMixConfig (mix_mode="none") from a transformers GPT2Config."""
    return CoCoMixConfig(
        d_model=hf_config.n_embd, n_layers=hf_config.n_layer, n_heads=hf_config.n_head,
        d_mlp=hf_config.n_inner or 4 * hf_config.n_embd, d_vocab=hf_config.vocab_size,
        n_ctx=hf_config.n_positions, act_fn=hf_config.activation_function,
        layer_norm_eps=hf_config.layer_norm_epsilon, mix_mode="none",
        tie_word_embeddings=getattr(hf_config, "tie_word_embeddings", True),
        initializer_range=hf_config.initializer_range,
    )


# ---- TransformerLens ----------------------------------------------------------------------
def _tl_state_dict(model: CoCoMixModel) -> dict[str, Tensor]:
    """Our plain-GPT-2 parameters under HookedTransformer names and layouts."""
    cfg = model.cfg
    out = {"embed.W_E": model.W_E, "pos_embed.W_pos": model.W_pos,
           "ln_final.w": model.ln_final.w, "ln_final.b": model.ln_final.b,
           "unembed.W_U": model.W_U, "unembed.b_U": torch.zeros(cfg.d_vocab)}
    heads = (cfg.n_heads, cfg.d_head)
    for i, block in enumerate(model.blocks):
        attn, p = block.attn, f"blocks.{i}."
        b_q, b_k, b_v = attn.b_QKV.view(3, *heads).unbind(0)
        out.update({
            p + "ln1.w": block.ln1.w, p + "ln1.b": block.ln1.b,
            p + "ln2.w": block.ln2.w, p + "ln2.b": block.ln2.b,
            p + "attn.W_Q": attn.W_Q, p + "attn.W_K": attn.W_K, p + "attn.W_V": attn.W_V,
            p + "attn.b_Q": b_q, p + "attn.b_K": b_k, p + "attn.b_V": b_v,
            p + "attn.W_O": attn.W_O.view(*heads, cfg.d_model), p + "attn.b_O": attn.b_O,
            p + "mlp.W_in": block.mlp.W_in, p + "mlp.b_in": block.mlp.b_in,
            p + "mlp.W_out": block.mlp.W_out, p + "mlp.b_out": block.mlp.b_out})
    return {k: v.detach().clone() for k, v in out.items()}


def to_hooked_transformer(model: CoCoMixModel, cls=None):
    """A TransformerLens `HookedTransformer` (or `cls`, e.g. SAE-Lens's HookedSAETransformer)
    with the weights of a plain (mix_mode "none") model; logits equal ours (to float error).

    The model's tokenizer, when attached, comes along (wrapped for transformers) with
    `<|endoftext|>` as BOS/EOS/pad and prepend_bos off, as the model was trained.
    """
    from cocomix_lens.model.hooks import HookedTransformer, HookedTransformerConfig

    cfg = model.cfg
    if cfg.mix_mode != "none":
        raise ValueError(f"only plain models (mix_mode 'none') convert to a HookedTransformer, "
                         f"got mix_mode={cfg.mix_mode!r}; fix: convert the teacher or an NTP "
                         "baseline (a concept head has no TransformerLens counterpart)")
    tl_cfg = HookedTransformerConfig(
        n_layers=cfg.n_layers, d_model=cfg.d_model, n_ctx=cfg.n_ctx, d_head=cfg.d_head,
        n_heads=cfg.n_heads, d_mlp=cfg.d_mlp, d_vocab=cfg.d_vocab, act_fn=cfg.act_fn,
        eps=cfg.layer_norm_eps, normalization_type="LN", default_prepend_bos=False,
        device=str(model.device))
    tl = (cls or HookedTransformer)(tl_cfg, tokenizer=_hf_tokenizer(model.tokenizer))
    state = tl.state_dict()
    state.update(_tl_state_dict(model))
    tl.load_state_dict(state)
    return tl.eval()


def _hf_tokenizer(tokenizer):
    if tokenizer is None:
        return None
    from transformers import PreTrainedTokenizerFast

    from cocomix_lens.data.tokenizer import EOS_TOKEN

    # name_or_path and add_bos_token: TransformerLens otherwise reloads the tokenizer from the
    # hub by name to make one that prepends BOS (we have none: prepend_bos stays off).
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=EOS_TOKEN,
                                   eos_token=EOS_TOKEN, pad_token=EOS_TOKEN, unk_token=EOS_TOKEN,
                                   name_or_path="cocomix-lens", add_bos_token=True)
