"""The unobserved fast path of a transformer block: the same math in fewer tensor ops.

"Fast unless someone is watching" (style rule 4), one level above SDPA: when no hook of any
kind is attached to a block or to anything inside it, `TransformerBlock.forward` runs
`fused_block` instead of its hooked path. On a one-token decode step of the tiny preset the
hooked path took 113 us per block, mostly module calls, hook checks and layout ops, and this
one 67 us: the same arithmetic in the same order (one permute instead of a view and three
transposes), so the same numbers. Attach any hook and the block takes the hooked path again.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules import module as _torch_module


def is_unobserved(modules: tuple[nn.Module, ...]) -> bool:
    """True when no forward/backward hook sits on any of `modules` nor globally."""
    g = _torch_module
    if (g._global_forward_hooks or g._global_forward_pre_hooks or g._global_backward_hooks
            or g._global_backward_pre_hooks):
        return False
    for m in modules:
        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks:
            return False
    return True


def fused_block(block: nn.Module, x: Tensor, kv_cache: Any) -> Tensor:
    """x [batch, pos, d_model] -> the block's output, as TransformerBlock's hooked path.

    `block` is a components.TransformerBlock and `kv_cache` its KVCacheLayer or None; they are
    read by duck typing so this module imports nothing of components (which imports it)."""
    # Plain dict lookups: nn.Module.__getattr__ costs ~0.5 us per weight, and a one-token
    # step of a small block has only ~60 us of arithmetic.
    mods = block._modules
    attn, mlp = mods["attn"], mods["mlp"]
    ap, mp = attn._parameters, mlp._parameters
    ln1, ln2 = mods["ln1"], mods["ln2"]
    b, t, d = x.shape
    y = torch.layer_norm(x, (d,), ln1._parameters["w"], ln1._parameters["b"], ln1.eps)
    qkv = torch.addmm(ap["b_QKV"], y.view(b * t, d), ap["W_QKV"])
    q, k, v = qkv.view(b, t, 3, attn.n_heads, attn.d_head).permute(2, 0, 3, 1, 4).unbind(0)
    if kv_cache is not None:  # q, k, v: [batch, n_heads, pos, d_head]
        k, v = kv_cache.append(k, v)
    z = attn.attend(q, k, v).transpose(1, 2).reshape(b * t, d)
    x = x + torch.addmm(ap["b_O"], z, ap["W_O"]).view(b, t, d)
    y = torch.layer_norm(x, (d,), ln2._parameters["w"], ln2._parameters["b"], ln2.eps)
    post = mlp.act(torch.addmm(mp["b_in"], y.view(b * t, d), mp["W_in"]))
    return x + torch.addmm(mp["b_out"], post, mp["W_out"]).view(b, t, d)
