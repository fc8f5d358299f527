"""ConceptExtractor: per-token concept scores and top-k labels from a teacher and an SAE.

The teacher is any TransformerLens `HookedRootModule` language model (a `HookedTransformer`, or
a `CoCoMixModel` with mix_mode="none"); the SAE is a `sae_lens.SAE` whose config names one of
the teacher's hooks. The SAE's own `encode` is used, so its input normalisation (the OpenAI
SAEs layer-normalise their input) and TopK/ReLU/JumpReLU activation are honoured.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cocomix_lens.concepts.capture import BACKWARDS, activation_at, next_token_targets
from cocomix_lens.concepts.methods import Readout, get_method
from cocomix_lens.types import as_tokens

# Attributes SAE-Lens leaves on the SAE in encode() for decode() to undo the normalisation.
_NORM_STATE = ("ln_mu", "ln_std", "x_norm_coeff")


@dataclass(frozen=True)
class AttributionMap:
    """Top concepts of each position of one sequence, for display.

    A position has fewer than k concepts when fewer than k latents score non-zero (always at
    the last position, which has no next token to attribute): the empty places hold id -1
    and score 0, never an arbitrary zero-score latent.
    """

    ids: Tensor  # [pos, k] int64 latent ids, best first; -1 = no concept
    scores: Tensor  # [pos, k] their scores (0 where ids is -1)
    method: str

    @property
    def valid(self) -> Tensor:
        """[pos, k] bool: True where ids holds a real concept."""
        return self.ids >= 0

    def concepts(self, pos: int) -> list[tuple[int, float]]:
        """(id, score) of the real concepts at position `pos`, best first."""
        keep = self.valid[pos]
        return list(zip(self.ids[pos][keep].tolist(), self.scores[pos][keep].tolist()))


class ConceptExtractor:
    """Scores SAE latents of `teacher` at `sae.cfg.metadata.hook_name` by `method`.

    `backward="hook"` (default) differentiates only above the SAE hook and never touches the
    teacher's parameters' `.grad`; `backward="full"` is the official code's full backward,
    kept as the reference for tests and benchmarks (same numbers, more work).
    """

    def __init__(self, teacher: nn.Module, sae: nn.Module, method: str = "attribution",
                 backward: str = "hook"):
        self.method_name = method
        self.method = get_method(method)
        if backward not in BACKWARDS:
            raise ValueError(f"unknown backward {backward!r}; choose one of {sorted(BACKWARDS)}")
        self._grad_fn = BACKWARDS[backward]
        self.teacher = teacher
        self.sae = sae
        self.hook_name = _check_pair(teacher, sae)

    @property
    def n_latents(self) -> int:
        return int(self.sae.cfg.d_sae)

    def readout(self, tokens: Tensor, targets: Tensor | None = None) -> Readout:
        """SAE latents (and, if the method needs it, dL/dx) for `tokens` [batch, pos].

        `targets` [batch, pos] are the next-token ids the loss scores (-100: no target); the
        default is the official shift, tokens[t+1] for position t and none for the last one.
        """
        tokens = _as_batch(tokens, self.teacher)
        grad = None
        if self.method.needs_grad:
            targets = next_token_targets(tokens) if targets is None else targets.to(tokens)
            x, grad = self._grad_fn(self.teacher, self.hook_name, tokens, _as_batch(targets))
        else:
            x = activation_at(self.teacher, self.hook_name, tokens)
        acts, pre = _encode(self.sae, x, want_pre=self.method.needs_pre)
        if grad is not None:
            grad = grad.to(acts.dtype)
        return Readout(acts=acts, decoder=decoder_directions(self.sae), pre=pre, grad=grad)

    @torch.no_grad()
    def scores(self, tokens: Tensor, targets: Tensor | None = None) -> Tensor:
        """[batch, pos, n_latents] concept scores of every latent at every position."""
        return self.method.score(self.readout(tokens, targets))

    def labels(self, tokens: Tensor, k: int = 4,
               targets: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Top-k latents per position: (ids [batch, pos, k] int64, scores [batch, pos, k])."""
        if not 1 <= k <= self.n_latents:
            raise ValueError(f"k={k} must be between 1 and the SAE's {self.n_latents} latents")
        top = self.scores(tokens, targets).topk(k, dim=-1)
        return top.indices, top.values

    def attribution_map(self, tokens: Tensor, k: int = 5) -> AttributionMap:
        """Top-k concept ids and scores at each position of one sequence `tokens` [pos];
        zero scores (no attribution) are left out as id -1, see `AttributionMap`."""
        ids, scores = self.labels(_one_sequence(tokens), k=k)
        ids, scores = ids[0], scores[0]
        empty = scores == 0
        return AttributionMap(ids=ids.masked_fill(empty, -1), scores=scores.masked_fill(empty, 0),
                              method=self.method_name)

    def concept_heatmap(self, tokens: Tensor, concept_id: int) -> Tensor:
        """[pos] score of latent `concept_id` at each position of one sequence `tokens` [pos]."""
        if not 0 <= concept_id < self.n_latents:
            raise ValueError(
                f"concept_id {concept_id} is outside the SAE's latents 0..{self.n_latents - 1}"
            )
        return self.scores(_one_sequence(tokens))[0, :, concept_id]


def decoder_directions(sae: nn.Module) -> Tensor:
    """[d_sae, d_in] the direction each latent writes, as the SAE's decode() applies it."""
    w_dec = sae.W_dec.detach()
    if getattr(sae.cfg, "rescale_acts_by_decoder_norm", False):
        # decode() divides activations by the decoder norms: the effective rows are unit norm
        w_dec = w_dec / w_dec.norm(dim=-1, keepdim=True)
    return w_dec


@torch.no_grad()
def _encode(sae: nn.Module, x: Tensor, want_pre: bool) -> tuple[Tensor, Tensor | None]:
    """(post-activation latents, pre-activations or None) for activations `x`."""
    store: dict[str, Tensor] = {}
    hooks = [("hook_sae_acts_pre", lambda t, hook: store.update(pre=t))] if want_pre else []
    try:
        with sae.hooks(fwd_hooks=hooks):
            acts = sae.encode(x)
    finally:
        for name in _NORM_STATE:  # we never decode, so drop what encode() kept for it
            sae.__dict__.pop(name, None)
    pre = store.get("pre")
    if pre is not None and getattr(sae.cfg, "rescale_acts_by_decoder_norm", False):
        pre = pre * sae.W_dec.norm(dim=-1)  # the values TopK actually ranks
    return acts, pre


def _check_pair(teacher: nn.Module, sae: nn.Module) -> str:
    """The SAE's hook name, after checking the teacher has it at the SAE's input width."""
    mix_mode = getattr(getattr(teacher, "cfg", None), "mix_mode", "none")
    if mix_mode != "none":
        raise ValueError(
            f"a CoCoMix teacher must have mix_mode='none', got {mix_mode!r}; "
            "use an NTP checkpoint (e.g. a '-ntp' preset) as the teacher"
        )
    hook_name = sae.cfg.metadata.hook_name
    if not hook_name:
        raise ValueError("the SAE's config names no hook (cfg.metadata.hook_name); set it to "
                         "the teacher hook it reads, e.g. 'blocks.5.hook_resid_post'")
    if hook_name not in teacher.hook_dict:
        raise ValueError(f"the teacher has no hook {hook_name!r} read by the SAE; "
                         "use an SAE trained on this teacher's hooks")
    if sae.cfg.reshape_activations != "none":
        raise ValueError("SAEs with reshape_activations="
                         f"{sae.cfg.reshape_activations!r} are not supported; use one that "
                         "reads a flat [batch, pos, d] hook such as hook_resid_post")
    probe = torch.zeros(1, 1, dtype=torch.long, device=_device(teacher))
    width = activation_at(teacher, hook_name, probe).shape[-1]
    if width != sae.cfg.d_in:
        raise ValueError(f"SAE d_in={sae.cfg.d_in} does not match the teacher's {hook_name} "
                         f"width {width}; use an SAE trained on this teacher")
    return hook_name


def _device(module: nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _as_batch(tokens: Tensor, module: nn.Module | None = None) -> Tensor:
    """Token ids as an int64 [batch, pos] tensor (a [pos] tensor becomes one sequence)."""
    tokens = as_tokens(tokens)
    device = _device(module) if module is not None else tokens.device
    return tokens.to(device=device, dtype=torch.long)


def _one_sequence(tokens: Tensor) -> Tensor:
    tokens = _as_batch(tokens)
    if tokens.shape[0] != 1:
        raise ValueError(f"expected one sequence [pos], got a batch of {tokens.shape[0]}")
    return tokens
