"""Hook points, and the one module of cocomix-lens that imports TransformerLens.

Everything this package takes from TransformerLens is re-exported here (`HookedRootModule`,
`ActivationCache`, `HookedTransformer` ...), so moving to another TransformerLens major version
is a change to this file alone (a ruff rule and tests/test_import_rules.py keep it so).

`HookPoint` is TransformerLens's, called at the cost of one `if` while nothing is attached:
the model calls every hook point inline (as TransformerLens does), and on a one-token decode
step of a small model nn.Module's call machinery, paid ~60 times per step, would cost more
than the arithmetic. Attach any hook (TransformerLens, raw PyTorch or global) and the call
goes through nn.Module as usual.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.modules.module import (
    _global_backward_hooks,
    _global_backward_pre_hooks,
    _global_forward_hooks,
    _global_forward_pre_hooks,
)
from transformer_lens import (
    ActivationCache,
    HookedRootModule,
    HookedTransformer,
    HookedTransformerConfig,
    patching,
)
from transformer_lens import hook_points as _tl_hook_points
from transformer_lens.utilities import lm_cross_entropy_loss

__all__ = ["ActivationCache", "HookPoint", "HookedRootModule", "HookedTransformer",
           "HookedTransformerConfig", "Module", "lm_cross_entropy_loss", "patching",
           "watched"]


def watched(module: nn.Module) -> bool:
    """True when a forward or backward hook would run on `module` (its own or a global one)."""
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks or _global_forward_hooks
                or _global_forward_pre_hooks or _global_backward_hooks
                or _global_backward_pre_hooks)


class Module(nn.Module):
    """An nn.Module that is cheap to call and to read submodules from, for small decode steps.

    A one-token decode step of a small model makes ~25 module calls and ~80 hook point
    look-ups, and nn.Module's machinery costs about a microsecond each even with nothing
    attached. So a call goes straight to `forward` while no hook would run on the module (attach
    any hook, or compile it, and the call takes nn.Module's path), and submodules are also
    kept in the instance dict, where attribute look-up finds them without nn.Module's
    `__getattr__` (assigning or deleting a submodule updates both; parameters are not mirrored:
    FSDP swaps them behind `__setattr__`'s back)."""

    def __call__(self, *args, **kwargs):
        if watched(self) or self._compiled_call_impl is not None:
            return super().__call__(*args, **kwargs)
        return self.forward(*args, **kwargs)

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        if isinstance(value, nn.Module):
            self.__dict__[name] = value

    def __delattr__(self, name: str) -> None:
        if name in self._modules:
            self.__dict__.pop(name, None)
        super().__delattr__(name)


class HookPoint(_tl_hook_points.HookPoint):
    """TransformerLens's identity HookPoint; an unwatched call returns its input directly."""

    def __call__(self, x: Tensor) -> Tensor:
        # watched(self), inlined: this runs ~60 times per decode step.
        if (self._forward_hooks or self._forward_pre_hooks or self._backward_hooks
                or self._backward_pre_hooks or _global_forward_hooks or _global_forward_pre_hooks
                or _global_backward_hooks or _global_backward_pre_hooks):
            return super().__call__(x)
        return x
