"""TransformerLens `ActivationCache`s for CoCoMixModel, and the interleaved stream split in two.

`model.run_with_cache` returns an `ActivationCache` whose `cache.model` is a `LensView`: the
few things TL's residual-stream methods read from a model (TL config names, a parameter-free
`ln_final`, LayerNorm-folded unembedding directions, as a TL model loaded with fold_ln=True).
The cache also holds the LayerNorm scales (`blocks.{i}.ln1/ln2.hook_scale`,
`ln_final.hook_scale`), recomputed exactly from the cached residuals, which TL's
`apply_ln_to_stack` divides by.

From `insert_layer` on an interleaved model's stream holds 2·pos rows (h1, c1, h2, c2, …), so
TL's `accumulated_resid` / `decompose_resid` / `logit_attrs` cannot stack it with the earlier
layers. `split_cache(cache)` returns two caches of pos rows each:

- **concept rows** (odd rows): these produce the logits (slot t predicts token t + 1). The
  concept slot enters the stream at `insert_layer` as c_t, so in this view c_t plays the
  embedding: `hook_embed` holds c_t, `hook_pos_embed` zeros, blocks below `insert_layer`
  contribute zeros and their residuals equal c_t. Then
  `logit_attrs(decompose_resid(), next_tokens).sum(0) + cache.model.b_U[next_tokens]` are the
  model's logits.
- **token rows** (even rows): the residual of each token position, whose sum of components is
  exact too; they feed no logits (projecting them through ln_final and W_U is a logit lens).

Attention patterns keep all key positions; only their query rows are split. A one-stream
model (mix_mode "none", or "add", where c_t is added to h_t at `insert_layer` outside any
block: append `cache["concept.hook_vector"]` to the stack) needs no split.

Per-head and per-neuron decompositions (`stack_head_results`, `stack_neuron_results`,
`get_full_resid_decomposition`) work on either view: `cache.model.blocks[i]` holds each
block's W_O [n_heads, d_head, d_model], b_O, W_out and b_out in TL's layout, and
`cache.model.accumulated_bias` counts the biases of the blocks the view's rows went through
(the concept view: from `insert_layer` on). On the unsplit interleaved cache, the methods that
stack layers fail with one line saying to split it.
"""

from __future__ import annotations

import functools
import re
from types import SimpleNamespace

import torch
from einops import EinopsError
from torch import Tensor

from cocomix_lens.model.hooks import ActivationCache

LAYER_RE = re.compile(r"^blocks\.(\d+)\.")
# Hooks whose position axis is the query axis, one after the head axis.
QUERY_AXIS = ("hook_attn_scores", "hook_pattern")
# Per-layer hooks the concept view defines below insert_layer (c_t enters unchanged there).
_RESIDS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post")
_OUTPUTS = ("hook_attn_out", "hook_mlp_out")


class LensView:
    """What TransformerLens's `ActivationCache` reads from `cache.model`, for a CoCoMixModel.

    W_U [d_model, d_vocab] and b_U [d_vocab] fold ln_final's affine map into the unembedding,
    so `ln_final(x) @ W_U + b_U` (ln_final here is parameter-free) equals the model's logits.
    """

    def __init__(self, model, rows: str = "all"):
        """rows: which rows of the stream the cache holds: "all" (as the model ran), "tokens"
        or "concepts" (split_cache's views); the concept rows start at insert_layer."""
        self.model, self.rows = model, rows
        cfg = model.cfg
        self.cfg = SimpleNamespace(
            n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads, d_head=cfg.d_head,
            d_mlp=cfg.d_mlp, d_vocab=cfg.d_vocab, n_ctx=cfg.n_ctx, normalization_type="LN",
            attn_only=False, device=model.device, eps=cfg.layer_norm_eps,
            n_key_value_heads=None)
        self.first_layer = cfg.insert_layer if rows == "concepts" else 0
        self.blocks = [_BlockWeights(b, cfg.n_heads, cfg.d_head) for b in model.blocks]

    @property
    def interleaved(self) -> bool:
        """True for the unsplit cache of an interleaved model (pos and 2·pos rows mixed)."""
        return self.rows == "all" and self.model.cfg.doubles_stream

    def accumulated_bias(self, layer: int, mlp_input: bool = False,
                         include_mlp_biases: bool = True) -> Tensor:
        """[d_model] sum of the b_O (and b_out) of the blocks below `layer` that the view's
        rows went through (plus block `layer`'s b_O with mlp_input), as TransformerLens."""
        bias = torch.zeros(self.cfg.d_model, device=self.cfg.device)
        for block in self.blocks[self.first_layer:layer]:
            bias = bias + block.attn.b_O + (block.mlp.b_out if include_mlp_biases else 0)
        if mlp_input and layer >= self.first_layer:
            bias = bias + self.blocks[layer].attn.b_O
        return bias

    @property
    def W_U(self) -> Tensor:
        return self.model.ln_final.w[:, None] * self.model.W_U

    @property
    def b_U(self) -> Tensor:
        return self.model.ln_final.b @ self.model.W_U

    def ln_final(self, x: Tensor) -> Tensor:
        """Parameter-free LayerNorm [..., d_model] (the affine part lives in W_U, b_U)."""
        return torch.layer_norm(x, (x.shape[-1],), None, None, self.cfg.eps)

    def tokens_to_residual_directions(self, tokens) -> Tensor:
        """Token(s) -> folded unembedding direction(s) [..., d_model], as TransformerLens."""
        if isinstance(tokens, str):
            tokens = self.model.to_single_token(tokens)
        tokens = torch.as_tensor(tokens, device=self.cfg.device)
        return self.W_U[:, tokens].movedim(0, -1)

    def to_single_token(self, string: str) -> int:
        return self.model.to_single_token(string)


class _BlockWeights:
    """One block's output weights in TransformerLens layout (views of the model's)."""

    def __init__(self, block, n_heads: int, d_head: int):
        attn, mlp = block.attn, block.mlp
        self.attn = SimpleNamespace(W_O=attn.W_O.view(n_heads, d_head, -1), b_O=attn.b_O)
        self.mlp = SimpleNamespace(W_out=mlp.W_out, b_out=mlp.b_out)


class CoCoMixCache(ActivationCache):
    """TransformerLens's ActivationCache. On an interleaved model's unsplit cache, the methods
    that stack several layers cannot line up pos rows with 2·pos rows: they fail with one line
    naming `split_cache` instead of a bare torch size error."""


# ActivationCache methods that stack several layers' activations.
STACKING = ("accumulated_resid", "decompose_resid", "stack_activation", "stack_head_results",
            "stack_neuron_results", "get_full_resid_decomposition", "logit_attrs")


def _guarded(name: str):
    method = getattr(ActivationCache, name)

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not self.model.interleaved or self.__dict__.get("_stacking"):
            return method(self, *args, **kwargs)  # an inner call: the outer one reports
        self._stacking = True
        try:
            return method(self, *args, **kwargs)
        except (RuntimeError, KeyError, EinopsError) as err:
            insert = self.model.model.cfg.insert_layer
            raise ValueError(
                f"ActivationCache.{name} cannot stack this interleaved cache (pos rows below "
                f"insert_layer {insert}, 2·pos rows from it on; {type(err).__name__}); fix: "
                "tokens, concepts = cocomix_lens.model.lens.split_cache(cache), then call "
                f"{name} on one of them") from None
        finally:
            self._stacking = False

    return wrapper


for _name in STACKING:
    setattr(CoCoMixCache, _name, _guarded(_name))


def activation_cache(model, cache: dict[str, Tensor], has_batch_dim: bool = True,
                     readout_rows: bool = True, rows: str = "all") -> CoCoMixCache:
    """Wrap a cache dict of `model` as a TL ActivationCache, adding the LayerNorm scales;
    `rows` says which rows of the stream it holds (LensView)."""
    add_ln_scales(cache, model, readout_rows)
    return CoCoMixCache(cache, LensView(model, rows), has_batch_dim=has_batch_dim)


def add_ln_scales(cache: dict[str, Tensor], model, readout_rows: bool = True) -> None:
    """Add `*.hook_scale` [..., pos, 1] = sqrt(var(x) + eps), what each LayerNorm divided
    by, for every cached residual it reads. ln_final reads only the concept rows of an
    interleaved stream (readout_rows=True)."""
    cfg, eps = model.cfg, model.cfg.layer_norm_eps
    pos_dim = -2
    for layer in range(cfg.n_layers):
        for resid, ln in (("hook_resid_pre", "ln1"), ("hook_resid_mid", "ln2")):
            src = cache.get(f"blocks.{layer}.{resid}")
            if src is not None:
                cache.setdefault(f"blocks.{layer}.{ln}.hook_scale", _scale(src, eps))
    final = cache.get(f"blocks.{cfg.n_layers - 1}.hook_resid_post")
    if final is not None:
        if readout_rows and cfg.doubles_stream:
            final = _rows(final, pos_dim, 1)
        cache.setdefault("ln_final.hook_scale", _scale(final, eps))


def _scale(x: Tensor, eps: float) -> Tensor:
    return (x.var(-1, unbiased=False, keepdim=True) + eps).sqrt()


def _rows(x: Tensor, dim: int, start: int) -> Tensor:
    """Every other row of `x` along `dim`, from `start` (0: tokens, 1: concept slots)."""
    index = [slice(None)] * x.ndim
    index[dim] = slice(start, None, 2)
    return x[tuple(index)]


def token_rows(x: Tensor) -> Tensor:
    """[batch, 2·pos, ...] interleaved activation -> [batch, pos, ...] token rows h_t."""
    return _rows(x, 1, 0)


def concept_rows(x: Tensor) -> Tensor:
    """[batch, 2·pos, ...] interleaved activation -> [batch, pos, ...] concept rows (the rows
    that produce the logits)."""
    return _rows(x, 1, 1)


def split_cache(cache: ActivationCache) -> tuple[ActivationCache, ActivationCache]:
    """An interleaved model's cache -> (token rows, concept rows), each with pos rows per
    layer, ready for accumulated_resid / decompose_resid / logit_attrs (module docstring)."""
    view = cache.model
    model = getattr(view, "model", None)
    if model is None or not model.cfg.doubles_stream:
        raise ValueError("split_cache takes the cache of an interleaved model's run_with_cache; "
                         "fix: a model with one stream (mix_mode 'add'/'none') needs no split: "
                         "use its cache as it is")
    insert = model.cfg.insert_layer
    axis = 1 if cache.has_batch_dim else 0
    tokens, concepts = {}, {}
    for name, act in cache.cache_dict.items():
        base = name.removesuffix("_grad")
        if base.endswith("hook_scale"):
            continue  # recomputed for each view
        match = LAYER_RE.match(base)
        layer = int(match.group(1)) if match else None
        if base == "concept.hook_mixed" or (layer is not None and layer >= insert):
            dim = axis + (1 if base.endswith(QUERY_AXIS) else 0)
            tokens[name], concepts[name] = _rows(act, dim, 0), _rows(act, dim, 1)
        elif base.startswith("ln_final."):
            concepts[name] = act  # ln_final reads only the concept rows
        elif layer is not None or base in ("hook_embed", "hook_pos_embed"):
            tokens[name] = act
        else:
            tokens[name] = concepts[name] = act  # concept.* hooks: one row per token
    _concept_prefix(concepts, insert)
    return (activation_cache(model, tokens, cache.has_batch_dim, False, rows="tokens"),
            activation_cache(model, concepts, cache.has_batch_dim, False, rows="concepts"))


def _concept_prefix(concepts: dict[str, Tensor], insert: int) -> None:
    """Below insert_layer the concept slot does not exist yet: c_t is its embedding, and the
    blocks below add nothing to it (zero head outputs z and neuron activations)."""
    c = concepts.get(f"blocks.{insert}.hook_resid_pre", concepts.get("concept.hook_vector"))
    if c is None:
        return
    concepts["hook_embed"], concepts["hook_pos_embed"] = c, torch.zeros_like(c)
    for layer in range(insert):
        for name in _RESIDS:
            concepts[f"blocks.{layer}.{name}"] = c
        for name in _OUTPUTS:
            concepts[f"blocks.{layer}.{name}"] = torch.zeros_like(c)
        for name, like in ((f"blocks.{layer}.attn.hook_z", f"blocks.{insert}.attn.hook_z"),
                           (f"blocks.{layer}.mlp.hook_post", f"blocks.{insert}.mlp.hook_post")):
            if like in concepts:
                concepts[name] = torch.zeros_like(concepts[like])
