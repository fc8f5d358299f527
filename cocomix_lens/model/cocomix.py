"""`CoCoMixModel`: a GPT-2 with a CoCoMix concept head, as a TransformerLens HookedRootModule."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cocomix_lens.config import CoCoMixConfig
from cocomix_lens.model.components import KVCacheLayer, LayerNorm, TransformerBlock
from cocomix_lens.model.concept import build_head
from cocomix_lens.model.generation import GenerationMixin
from cocomix_lens.model.hooks import HookedRootModule, HookPoint
from cocomix_lens.model.serialization import SerializationMixin
from cocomix_lens.model.text import TextMixin
from cocomix_lens.types import Logits, Tokens, as_tokens

# TransformerLens forward kwargs that SAE-Lens passes: we never prepend BOS (prepend_bos is
# ignored) and pad a batch of texts on the right only (padding_side is checked).
_IGNORED_TL_KWARGS = {"prepend_bos", "padding_side"}


class KVCache:
    """Per-block key/value caches; blocks >= insert_layer hold the doubled stream."""

    def __init__(self, model: CoCoMixModel, batch: int, max_tokens: int):
        cfg, like = model.cfg, model.embed.W_E
        self.n_tokens = 0
        # A contiguous [d_model, d_vocab] unembedding for decode steps on CPU: x @ W_E.T with
        # the tied [d_vocab, d_model] matrix runs a transposed GEMV about 2x slower there (one
        # extra embedding-sized copy per cache). It is detached, so forward uses it only when
        # no gradient is taken; GPUs multiply the transposed view at full speed.
        self.W_U = None
        if like.device.type == "cpu":
            with torch.no_grad():
                self.W_U = model.W_U.contiguous()
        self.layers = [
            KVCacheLayer(batch, cfg.n_heads, max_tokens * model.stream_factor(i), cfg.d_head, like)
            for i in range(cfg.n_layers)
        ]


class CoCoMixModel(SerializationMixin, TextMixin, GenerationMixin, HookedRootModule):
    """GPT-2 (learned positions, pre-LN, tanh GELU) + concept head mixed in at insert_layer.

    mix_mode="none" is plain GPT-2 (teachers and NTP baselines).
    """

    def __init__(self, cfg: CoCoMixConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.metadata: dict = {}  # free-form, saved in config.json (e.g. tokenizer_sha256)
        # Absolute position of the current forward's first token: 0, or the tokens already in
        # the KV cache of a decode step. Hooks read it to know which positions they see.
        self.pos_offset = 0
        self.embed = _Embedding(cfg.d_vocab, cfg.d_model, "W_E")
        self.pos_embed = _Embedding(cfg.n_ctx, cfg.d_model, "W_pos")
        self.hook_embed = HookPoint()  # [batch, pos, d_model]
        self.hook_pos_embed = HookPoint()  # [batch, pos, d_model]
        self.blocks = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.n_layers))
        self.concept = build_head(cfg)  # mixes at insert_layer; None for plain GPT-2
        self.ln_final = LayerNorm(cfg.d_model, cfg.layer_norm_eps)
        self.unembed = None if cfg.tie_word_embeddings else _Unembed(cfg.d_model, cfg.d_vocab)
        self.init_weights()
        self.setup()  # TransformerLens: names every HookPoint, builds hook_dict / mod_dict

    # ---- parameters ---------------------------------------------------------------------
    @property
    def W_E(self) -> Tensor:
        return self.embed.W_E

    @property
    def W_pos(self) -> Tensor:
        return self.pos_embed.W_pos

    @property
    def W_U(self) -> Tensor:
        """[d_model, d_vocab]; the transpose of W_E when embeddings are tied."""
        return self.embed.W_E.T if self.unembed is None else self.unembed.W_U

    @property
    def device(self) -> torch.device:
        return self.embed.W_E.device

    @property
    def use_sdpa(self) -> bool:
        return all(b.attn.use_sdpa for b in self.blocks)

    @use_sdpa.setter
    def use_sdpa(self, value: bool) -> None:
        for b in self.blocks:
            b.attn.use_sdpa = value

    def init_weights(self) -> None:
        """GPT-2 init: N(0, 0.02), residual output projections scaled by 1/sqrt(2 n_layers)."""
        std = self.cfg.initializer_range
        for name, p in self.named_parameters():
            if name.endswith(("W_O", "W_out")):
                nn.init.normal_(p, std=std / (2 * self.cfg.n_layers) ** 0.5)
            elif name.split(".")[-1].startswith("W_"):
                nn.init.normal_(p, std=std)

    def stream_factor(self, layer: int) -> int:
        """Positions per token in the stream entering block `layer` (2 after interleaving)."""
        return 2 if self.cfg.doubles_stream and layer >= self.cfg.insert_layer else 1

    # ---- forward ------------------------------------------------------------------------
    def forward(
        self,
        input: Tokens | str | list[str],
        return_type: str | None = "logits",
        loss_per_token: bool = False,
        return_concept_logits: bool = False,
        stop_at_layer: int | None = None,
        past_kv_cache: KVCache | None = None,
        **tl_kwargs,
    ) -> Logits | Tensor | tuple | None:
        """tokens [batch, pos] or text -> logits [batch, pos, d_vocab] (+ concept logits).

        return_type as TransformerLens: "logits", "loss" (mean next-token cross-entropy),
        "both" (logits, loss) or None; loss_per_token gives [batch, pos - 1]. A list of texts
        is padded on the right and the padding is left out of the loss.
        return_concept_logits=True returns (that output, concept logits [batch, pos, C]).
        stop_at_layer=i returns the residual stream entering block i (TransformerLens).
        past_kv_cache continues from cached positions (generation); it is updated in place,
        and `model.pos_offset` holds the absolute position of this call's first token.
        """
        self._check_kwargs(tl_kwargs, return_concept_logits)
        self._check_return_type(return_type)
        tokens, pad_mask = self._input_tokens(input, tl_kwargs.get("padding_side"))
        tokens = self._check_tokens(tokens, past_kv_cache)
        self.pos_offset = 0 if past_kv_cache is None else past_kv_cache.n_tokens
        x = self._embed(tokens, self.pos_offset)  # [batch, pos, d_model]
        concept_logits = None
        for i, block in enumerate(self.blocks):
            if i == stop_at_layer:
                return x
            if i == self.cfg.insert_layer and self.concept is not None:
                x, concept_logits = self.concept.mix(x)
            x = block(x, None if past_kv_cache is None else past_kv_cache.layers[i])
        if past_kv_cache is not None:
            past_kv_cache.n_tokens += tokens.shape[1]
        logits = self._unembed(x, past_kv_cache)
        out = self._output(logits, tokens, return_type, loss_per_token, pad_mask)
        return (out, concept_logits) if return_concept_logits else out

    def _embed(self, tokens: Tensor, offset: int) -> Tensor:
        pos = self.pos_embed.W_pos.narrow(0, offset, tokens.shape[1])  # [pos, d_model]
        embed = self.hook_embed(F.embedding(tokens, self.embed.W_E))
        return embed + self.hook_pos_embed(pos.expand_as(embed))

    def _unembed(self, x: Tensor, cache: KVCache | None = None) -> Tensor:
        head = self.concept
        if head is not None:
            x = head.readout(x)  # e.g. the concept slots of an interleaved stream
        x = self.ln_final(x)
        if cache is not None and cache.W_U is not None and not torch.is_grad_enabled():
            return torch.mm(x.reshape(-1, x.shape[-1]), cache.W_U).view(*x.shape[:-1], -1)
        if self.unembed is None:
            return F.linear(x, self.embed.W_E)  # tied: x @ W_E.T without a transposed copy
        return x @ self.unembed.W_U

    def _check_kwargs(self, tl_kwargs: dict, return_concept_logits: bool) -> None:
        unknown = set(tl_kwargs) - _IGNORED_TL_KWARGS
        if unknown:
            raise TypeError(f"CoCoMixModel.forward got unexpected keyword(s) {sorted(unknown)}")
        if return_concept_logits and not self.cfg.has_concepts:
            raise ValueError(
                f"return_concept_logits=True needs a concept head, but mix_mode="
                f"{self.cfg.mix_mode!r}; use mix_mode 'interleave' or 'add'"
            )

    def _check_tokens(self, tokens: Tensor, cache: KVCache | None) -> Tensor:
        tokens = as_tokens(tokens, self.cfg.n_ctx, 0 if cache is None else cache.n_tokens)
        # The embedding would raise a bare "index out of range in self" (or, on GPU, assert).
        if not tokens.numel() or torch.compiler.is_compiling():
            return tokens
        lo, hi = (int(v) for v in torch.aminmax(tokens))  # one pass, not min() and max()
        if not 0 <= lo <= hi < self.cfg.d_vocab:
            raise ValueError(f"token ids must lie in [0, {self.cfg.d_vocab}), got [{lo}, {hi}]; "
                             "fix: tokenize with this model's tokenizer (model.to_tokens)")
        return tokens

    # Unknown hook names: one clear error instead of TransformerLens's bare KeyError.
    def add_hook(self, name, hook, *args, **kwargs) -> None:
        self._check_hook_name(name)
        super().add_hook(name, hook, *args, **kwargs)

    def _enable_hook_with_name(self, name: str, hook, dir) -> None:
        self._check_hook_name(name)
        super()._enable_hook_with_name(name, hook, dir)

    def _check_hook_name(self, name) -> None:
        if isinstance(name, str) and name not in self.hook_dict:
            import difflib

            close = difflib.get_close_matches(name, list(self.hook_dict), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(f"no hook point named {name!r} in this model{hint}; fix: use a "
                             "name of model.hook_dict, e.g. 'blocks.0.hook_resid_post'")

    def new_kv_cache(self, batch: int, max_tokens: int | None = None) -> KVCache:
        """An empty KV cache for `batch` sequences of up to `max_tokens` tokens."""
        return KVCache(self, batch, max_tokens or self.cfg.n_ctx)


class _Embedding(nn.Module):
    def __init__(self, n: int, d: int, name: str):
        super().__init__()
        self.register_parameter(name, nn.Parameter(torch.empty(n, d)))


class _Unembed(nn.Module):
    def __init__(self, d_model: int, d_vocab: int):
        super().__init__()
        self.W_U = nn.Parameter(torch.empty(d_model, d_vocab))
