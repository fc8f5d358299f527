"""Reading the activation at the SAE hook of a teacher, and the loss gradient there.

Two registered ways to get the gradient, giving bit-identical results:
- `hook` (what the extractor uses): the teacher's parameters are frozen for the call and the
  activation is detached at the hook and made a leaf, so autograd records nothing below the
  hook and `torch.autograd.grad` differentiates only the blocks above it.
- `full` (the reference, what the official code does): parameters require grad and
  `loss.backward()` runs through the whole model, filling every parameter's `.grad`; the
  gradient at the hook is read with `retain_grad`. Kept for tests and the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IGNORE = -100  # target id of a position without a next token


class _StopForward(Exception):
    """Raised by a hook to abandon the rest of a forward pass once the activation is read."""


@contextmanager
def parameters_require_grad(module: nn.Module, flag: bool) -> Iterator[None]:
    """Set `requires_grad` on every parameter of `module`, restoring the old flags on exit."""
    params = list(module.parameters())
    old = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(flag)
    try:
        yield
    finally:
        for p, flag_before in zip(params, old):
            p.requires_grad_(flag_before)


def next_token_targets(tokens: Tensor) -> Tensor:
    """[batch, pos] targets: token t+1 for position t, IGNORE for the last position."""
    pad = torch.full_like(tokens[:, :1], IGNORE)
    return torch.cat([tokens[:, 1:], pad], dim=1)


def sequence_mean_ce(logits: Tensor, targets: Tensor) -> Tensor:
    """Sum over sequences of each sequence's mean next-token CE (IGNORE positions skipped).

    The official code takes one mean over the whole batch; summing per-sequence means instead
    makes a sequence's gradient independent of what else is in the batch (scores differ only
    by the factor 1/batch), so label caches do not depend on the batch size.
    """
    ce = F.cross_entropy(
        logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE, reduction="none"
    ).view(targets.shape)
    n_valid = (targets != IGNORE).sum(-1).clamp(min=1)
    return (ce.sum(-1) / n_valid).sum()


def activation_at(teacher: nn.Module, hook_name: str, tokens: Tensor) -> Tensor:
    """The activation at `hook_name` for `tokens`; the forward stops right after the hook."""
    return activations_at(teacher, [hook_name], tokens)[hook_name]


def activations_at(model: nn.Module, hook_names: list[str], tokens: Tensor) -> dict[str, Tensor]:
    """{name: activation} at each of `hook_names` (run in the order given) for `tokens`;
    the forward stops right after the last of them, so nothing above it is computed."""
    store: dict[str, Tensor] = {}
    last = hook_names[-1]

    def read(act: Tensor, hook) -> None:
        store[hook.name] = act.detach()
        if hook.name == last:
            raise _StopForward

    with torch.no_grad(), model.hooks(fwd_hooks=[(name, read) for name in hook_names]):
        try:
            model(tokens)
        except _StopForward:
            pass
    missing = [name for name in hook_names if name not in store]
    if missing:
        raise ValueError(f"the model never ran hook(s) {missing}; check the hook names "
                         "(e.g. the SAE's cfg.metadata.hook_name)")
    return store


def grad_at_hook(teacher: nn.Module, hook_name: str, tokens: Tensor,
                 targets: Tensor) -> tuple[Tensor, Tensor]:
    """(x, dL/dx) at `hook_name`, differentiating only the part of the teacher above the hook."""
    store: dict[str, Tensor] = {}

    def make_leaf(act: Tensor, hook) -> Tensor:
        # The backward stops here: downstream sees a fresh leaf, upstream keeps no graph.
        store["x"] = act.detach().requires_grad_(True)
        return store["x"]

    with (parameters_require_grad(teacher, False), torch.enable_grad(),
          teacher.hooks(fwd_hooks=[(hook_name, make_leaf)])):
        loss = sequence_mean_ce(teacher(tokens), targets)
        (grad,) = torch.autograd.grad(loss, store["x"])
    return store["x"].detach(), grad


def grad_full_backward(teacher: nn.Module, hook_name: str, tokens: Tensor,
                       targets: Tensor) -> tuple[Tensor, Tensor]:
    """(x, dL/dx) the way the official code gets them: a full backward into every parameter.

    The parameters' previous `.grad` are restored afterwards so the reference has no side
    effect on a caller's optimiser state.
    """
    store: dict[str, Tensor] = {}

    def keep(act: Tensor, hook) -> None:
        act.retain_grad()
        store["x"] = act

    params = list(teacher.parameters())
    old_grads = [p.grad for p in params]
    for p in params:
        p.grad = None
    try:
        with (parameters_require_grad(teacher, True), torch.enable_grad(),
              teacher.hooks(fwd_hooks=[(hook_name, keep)])):
            sequence_mean_ce(teacher(tokens), targets).backward()
    finally:
        for p, g in zip(params, old_grads):
            p.grad = g
    return store["x"].detach(), store["x"].grad


GradFn = Callable[[nn.Module, str, Tensor, Tensor], tuple[Tensor, Tensor]]
BACKWARDS: dict[str, GradFn] = {"hook": grad_at_hook, "full": grad_full_backward}
