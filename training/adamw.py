"""`AdamW`: torch's AdamW with the same arithmetic, run in cache-sized chunks on CPU.

torch's CPU AdamW (the single-tensor path) runs eight elementwise ops per parameter, each a
full pass over it: on a 100 MB embedding that is eight round trips to memory, where one
would do. Every op is elementwise and rounds each element alone, so applying the same op
sequence to one chunk after another gives the same bits (tests/training/test_adamw.py). On
other devices, and with options this path does not implement, `step` is torch's own.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Elements per chunk: five 1 MB slices (param, grad, two moments, the denominator) stay in the
# last-level cache between the ops, and the ~7 op calls per chunk cost little beside them.
# On the 69M shape (85M parameters, 1 thread) 32K-element chunks took 0.32 s a step (call
# overhead), 256K-2M ones 0.16-0.20 s, torch's whole-tensor passes 0.41-0.51 s.
CHUNK = 1 << 18
# The torch whose `_single_tensor_adam` op order and `_init_group` signature `_step_param`
# copies (pyproject allows torch >= 2.1, whose AdamW had another `_init_group`): elsewhere
# `step` is torch's own, so other versions train as torch does, only slower.
CHUNKED_TORCH = "2.13."


class AdamW(torch.optim.AdamW):
    """torch.optim.AdamW (same state_dict, param groups and schedulers), chunked on CPU."""

    @torch.no_grad()
    def step(self, closure=None):
        if not all(map(self._chunkable, self.param_groups)):
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
            # torch's own lazy state initialisation: the state_dict stays torch's.
            self._init_group(group, params, grads, exp_avgs, exp_avg_sqs, [], steps)
            for p, g, m, v, step_t in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
                _step_param(p, g, m, v, step_t, group)
        return loss

    @staticmethod
    def _chunkable(group: dict) -> bool:
        if not torch.__version__.startswith(CHUNKED_TORCH):
            return False
        off = ("amsgrad", "maximize", "capturable", "differentiable", "foreach", "fused")
        scalars = (group["lr"], group["weight_decay"], *group["betas"])
        return (not any(group[k] for k in off) and all(isinstance(x, float) for x in scalars)
                and all(p.device.type == "cpu" and p.dtype == torch.float32
                        for p in group["params"]))


def _step_param(p: Tensor, g: Tensor, m: Tensor, v: Tensor, step_t: Tensor, group: dict) -> None:
    """torch's `_single_tensor_adam` for one parameter (decoupled weight decay, amsgrad,
    maximize, capturable and differentiable off), op for op, one chunk at a time."""
    lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
    beta1, beta2 = group["betas"]
    step_t += 1
    step = step_t.item()
    # The Python-float scalars torch computes, in its order.
    step_size = lr / (1 - beta1**step)
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    decay = 1 - lr * wd
    denom = None
    for pc, gc, mc, vc in _chunks((p, g, m, v)):
        if denom is None:
            denom = torch.empty_like(pc)  # reused: one allocation per parameter
        d = denom if denom.shape == pc.shape else denom.narrow(0, 0, pc.numel())  # last chunk
        if wd != 0:
            pc.mul_(decay)
        mc.lerp_(gc, 1 - beta1)
        vc.mul_(beta2).addcmul_(gc, gc, value=1 - beta2)
        torch.sqrt(vc, out=d).div_(bias_correction2_sqrt).add_(eps)
        pc.addcdiv_(mc, d, value=-step_size)


def _chunks(tensors: tuple[Tensor, ...]):
    """Aligned slices of CHUNK elements of same-shaped tensors (whole, if one is strided)."""
    if not all(t.is_contiguous() for t in tensors):
        yield tensors
        return
    flat = [t.view(-1) for t in tensors]
    n = flat[0].numel()
    for start in range(0, n, CHUNK):
        yield tuple(t.narrow(0, start, min(CHUNK, n - start)) for t in flat)
