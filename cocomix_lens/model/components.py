"""GPT-2 building blocks with TransformerLens hook points: LayerNorm, Attention, MLP, Block.

Written as nanoGPT and TransformerLens write theirs: each residual update on its own line and
every hook point called inline. One code path whether or not anyone is watching: a hook point
with nothing attached costs an `if` (model/hooks.py); attention runs through
`F.scaled_dot_product_attention`, and the pattern is materialised only when a hook on
`hook_attn_scores` / `hook_pattern` is attached (or `use_sdpa` is off). Same numbers either way.
Blocks read and append to an optional `KVCacheLayer` for incremental decoding.
"""

from __future__ import annotations

import functools
import math

import einops
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cocomix_lens.config import CoCoMixConfig
from cocomix_lens.model.hooks import HookPoint, Module, watched


def gelu_new(x: Tensor) -> Tensor:
    # GPT-2's tanh approximation of GELU.
    return F.gelu(x, approximate="tanh")


ACTIVATIONS = {"gelu_new": gelu_new, "gelu": F.gelu, "relu": F.relu}


class LayerNorm(Module):
    """Affine LayerNorm (GPT-2) with `hook_normalized` (before the affine map, as TL)."""

    def __init__(self, d_model: int, eps: float):
        super().__init__()
        self.eps = eps
        self.normalized_shape = (d_model,)  # as nn.LayerNorm; built once, not per call
        self.w = nn.Parameter(torch.ones(d_model))
        self.b = nn.Parameter(torch.zeros(d_model))
        self.hook_normalized = HookPoint()  # [batch, pos, d_model]

    def forward(self, x: Tensor) -> Tensor:
        # torch.layer_norm, not F.layer_norm: the functional wrapper's dispatch checks cost
        # more than the kernel on a one-token decode step. Unwatched: one fused kernel.
        if not watched(self.hook_normalized):
            return torch.layer_norm(x, self.normalized_shape, self.w, self.b, self.eps)
        x = torch.layer_norm(x, self.normalized_shape, None, None, self.eps)
        x = self.hook_normalized(x)
        return x * self.w + self.b


class Attention(Module):
    """Causal multi-head self-attention; weights in TransformerLens layout."""

    def __init__(self, cfg: CoCoMixConfig):
        super().__init__()
        n, d, h = cfg.n_heads, cfg.d_model, cfg.d_head
        self.n_heads, self.d_head = n, h
        # Fused QKV projection: one matmul per step instead of three (decode-step overhead).
        self.W_QKV = nn.Parameter(torch.empty(d, 3 * d))
        self.b_QKV = nn.Parameter(torch.zeros(3 * d))
        self.W_O = nn.Parameter(torch.empty(d, d))
        self.b_O = nn.Parameter(torch.zeros(d))
        self.use_sdpa = True
        self.hook_q = HookPoint()  # [batch, pos, n_heads, d_head]
        self.hook_k = HookPoint()  # [batch, pos, n_heads, d_head]
        self.hook_v = HookPoint()  # [batch, pos, n_heads, d_head]
        self.hook_attn_scores = HookPoint()  # [batch, n_heads, query_pos, key_pos]
        self.hook_pattern = HookPoint()  # [batch, n_heads, query_pos, key_pos]
        self.hook_z = HookPoint()  # [batch, pos, n_heads, d_head]

    # TransformerLens-layout views of the fused weights: [n_heads, d_model, d_head].
    def _head_view(self, i: int) -> Tensor:
        d = self.n_heads * self.d_head
        return einops.rearrange(self.W_QKV[:, i * d : (i + 1) * d],
                                "d_model (n_heads d_head) -> n_heads d_model d_head",
                                n_heads=self.n_heads)

    @property
    def W_Q(self) -> Tensor:
        return self._head_view(0)

    @property
    def W_K(self) -> Tensor:
        return self._head_view(1)

    @property
    def W_V(self) -> Tensor:
        return self._head_view(2)

    def forward(self, x: Tensor, kv_cache: KVCacheLayer | None = None) -> Tensor:
        """x [batch, pos, d_model] -> attention output [batch, pos, d_model]."""
        b, t, d = x.shape
        qkv = torch.addmm(self.b_QKV, x.view(b * t, d), self.W_QKV)  # [batch * pos, 3 * d]
        # The head split as views (einops would say "b t (three h dh) -> three b t h dh"; its
        # per-call cost shows on a one-token decode step).
        q, k, v = qkv.view(b, t, 3, self.n_heads, self.d_head).unbind(2)  # [b, pos, h, dh]
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [b, h, pos, dh]
        if kv_cache is not None:
            k, v = kv_cache.append(k, v)  # [batch, n_heads, cached + pos, d_head]
        if self.use_sdpa and not (watched(self.hook_attn_scores) or watched(self.hook_pattern)):
            z = attend(q, k, v)
        else:
            z = self.attend_explicit(q, k, v)
        z = self.hook_z(z.transpose(1, 2))  # [batch, pos, n_heads, d_head]
        return torch.addmm(self.b_O, z.reshape(b * t, d), self.W_O).view(b, t, d)

    def attend_explicit(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """`attend` with the scores and pattern materialised (and hooked)."""
        t = q.shape[2]
        offset = k.shape[2] - t
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.d_head)
        scores = scores.masked_fill(~_causal_mask(t, offset, q.device), float("-inf"))
        scores = self.hook_attn_scores(scores)
        pattern = self.hook_pattern(scores.softmax(-1))
        return pattern @ v


def attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """SDPA for q [b, h, t, dh] against k, v [b, h, offset + t, dh] (cached keys first)."""
    t = q.shape[2]
    offset = k.shape[2] - t  # number of cached positions before this chunk
    if offset == 0:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if t == 1:
        return F.scaled_dot_product_attention(q, k, v)  # one query sees every cached key
    # SDPA's is_causal is top-left aligned; a chunk after a cache needs bottom-right.
    return F.scaled_dot_product_attention(q, k, v, attn_mask=_causal_mask(t, offset, q.device))


def _causal_mask(t: int, offset: int, device: torch.device) -> Tensor:
    """Bool [t, offset + t]: query i (absolute offset + i) sees keys j <= offset + i."""
    # A view into one cached lower-triangular matrix: building a mask per decode step costs
    # four tensor ops, a slice costs one.
    end = offset + t
    size = 1 << max(10, (end - 1).bit_length())  # powers of two: few distinct sizes
    return _tril(size, device).narrow(0, offset, t).narrow(1, 0, end)


@functools.lru_cache(maxsize=4)
def _tril(size: int, device: torch.device) -> Tensor:
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()


class MLP(Module):
    def __init__(self, cfg: CoCoMixConfig):
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        self.act = ACTIVATIONS[cfg.act_fn]
        self.hook_pre = HookPoint()  # [batch, pos, d_mlp]
        self.hook_post = HookPoint()  # [batch, pos, d_mlp]

    def forward(self, x: Tensor) -> Tensor:
        """x [batch, pos, d_model] -> MLP output [batch, pos, d_model]."""
        # F.linear with W.T runs the same addmm as x.view(-1, d) @ W + b (same numbers), with
        # the flatten and unflatten in C++: two Python ops fewer per call on a decode step.
        pre = self.hook_pre(F.linear(x, self.W_in.T, self.b_in))  # [batch, pos, d_mlp]
        post = self.hook_post(self.act(pre))  # [batch, pos, d_mlp]
        return F.linear(post, self.W_out.T, self.b_out)


class TransformerBlock(Module):
    """Pre-LN GPT-2 block; each residual update on its own line."""

    def __init__(self, cfg: CoCoMixConfig):
        super().__init__()
        self.ln1 = LayerNorm(cfg.d_model, cfg.layer_norm_eps)
        self.attn = Attention(cfg)
        self.ln2 = LayerNorm(cfg.d_model, cfg.layer_norm_eps)
        self.mlp = MLP(cfg)
        self.hook_resid_pre = HookPoint()  # [batch, pos, d_model]
        self.hook_attn_out = HookPoint()  # [batch, pos, d_model]
        self.hook_resid_mid = HookPoint()  # [batch, pos, d_model]
        self.hook_mlp_out = HookPoint()  # [batch, pos, d_model]
        self.hook_resid_post = HookPoint()  # [batch, pos, d_model]

    def forward(self, x: Tensor, kv_cache: KVCacheLayer | None = None) -> Tensor:
        """x [batch, pos, d_model] -> [batch, pos, d_model]."""
        x = self.hook_resid_pre(x)
        attn_out = self.hook_attn_out(self.attn(self.ln1(x), kv_cache))
        x = self.hook_resid_mid(x + attn_out)
        mlp_out = self.hook_mlp_out(self.mlp(self.ln2(x)))
        x = self.hook_resid_post(x + mlp_out)
        return x


class KVCacheLayer:
    """Preallocated keys/values of one block: [batch, n_heads, max_pos, d_head]."""

    def __init__(self, batch: int, n_heads: int, max_pos: int, d_head: int, like: Tensor):
        self.k = like.new_empty(batch, n_heads, max_pos, d_head)
        self.v = like.new_empty(batch, n_heads, max_pos, d_head)
        self.pos = 0

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        end = self.pos + k.shape[2]
        if end > self.k.shape[2]:
            raise ValueError(f"KV cache full ({self.k.shape[2]} positions); allocate a larger one")
        # narrow + copy_: Python slice indexing costs several dispatches per call.
        self.k.narrow(2, self.pos, k.shape[2]).copy_(k)
        self.v.narrow(2, self.pos, v.shape[2]).copy_(v)
        self.pos = end
        return self.k.narrow(2, 0, end), self.v.narrow(2, 0, end)
