"""Training objectives, as a registry of small specs over three loss terms.

Each objective names the model it trains (`mix_mode`) and which terms it adds to next-token
prediction:
    loss = NTP + lam * concept + kd_weight * KD
    NTP     = mean CE(logits_t, x_{t+1})
    concept = mean over positions and the k_attr labels of CE(concept_logits_t, label_{t,j})
    KD      = mean over positions of KL(teacher_t || student_t)   (teacher: a mix_mode none model)

`concept_only` trains the concept head on a mix_mode "add" model whose concept vector is
multiplied by zero through the `concept.hook_vector` hook: the stream after insert_layer is then
exactly the plain GPT-2 stream (h + 0), so the predictor learns from the concept loss alone and
nothing is mixed. Multiplying (rather than replacing) keeps the compressor in the graph with
zero gradients, so DDP sees every parameter used.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # torch is imported on use: `cocomix-lens train --help` lists OBJECTIVES
    from torch import Tensor, nn


@dataclass
class Batch:
    """One (micro-)batch."""

    x: Tensor
    """Input tokens [batch, pos] int64."""
    y: Tensor
    """Target tokens [batch, pos] int64 (x shifted by one)."""
    labels: Tensor | None = None
    """Concept labels [batch, pos, k] int64 (negative = no label), or None."""


@dataclass
class LossWeights:
    """Weights and the teacher that objectives may use."""

    lam: float = 0.1
    """Weight of the concept loss."""
    kd_weight: float = 0.1
    """Weight of KL(teacher || student)."""
    teacher: nn.Module | None = None
    """Frozen teacher (mix_mode none, same vocabulary) for kd."""


@dataclass(frozen=True)
class Objective:
    """Which model an objective trains and which loss terms it uses."""

    name: str
    mix_mode: str
    """mix_mode of the student model this objective needs."""
    concept_loss: bool = False
    """Add lam * concept CE against the labels."""
    kd: bool = False
    """Add kd_weight * KL(teacher || student)."""
    zero_mix: bool = False
    """Multiply the concept vector by 0 (concept prediction without mixing)."""
    help: str = ""

    @property
    def needs_labels(self) -> bool:
        return self.concept_loss

    @property
    def needs_teacher(self) -> bool:
        return self.kd

    def __call__(self, model: Callable, batch: Batch, weights: LossWeights,
                 hooks_model: nn.Module | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """(loss, detached parts). `model` may be a DDP/FSDP/compiled wrapper; `hooks_model` is
        the bare CoCoMixModel used for hook contexts (default: `model`)."""
        return compute_loss(self, model, batch, weights, hooks_model or model)


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("ntp", "none", help="next-token prediction on plain GPT-2"),
    Objective("cocomix", "interleave", concept_loss=True,
              help="NTP + lam * concept CE, concepts interleaved (paper)"),
    Objective("add", "add", concept_loss=True,
              help="as cocomix but c_t is added to h_t (paper ablation)"),
    Objective("kd", "none", kd=True, help="NTP + kd_weight * KL(teacher || student)"),
    Objective("pause", "pause", help="learned pause vectors interleaved, NTP only"),
    Objective("concept_only", "add", concept_loss=True, zero_mix=True,
              help="concept loss, nothing mixed (add model, concept vector zeroed)"),
    Objective("mix_only", "interleave", help="concepts interleaved, no concept loss"),
)}


def get_objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


# ---- loss terms ---------------------------------------------------------------------------
def ntp_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy; logits [batch, pos, d_vocab], targets [batch, pos]."""
    import torch.nn.functional as F

    return F.cross_entropy(logits.flatten(0, -2).float(), targets.flatten())


def concept_nll(concept_logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """(nll, valid), each [batch, pos, k]: -log softmax(concept logits)[label] per label, in
    float32, and which labels exist (negative = none; their nll is meaningless)."""
    from training.concept_ce import nll_terms

    _, nll, valid = nll_terms(concept_logits.float(), labels)
    return nll, valid


def concept_loss(concept_logits: Tensor, labels: Tensor) -> Tensor:
    """Mean CE of the concept logits [batch, pos, C] against each of the labels [batch, pos, k].

    Equal to mean_j CE(z, labels[..., j]) when every label is valid; negative labels are skipped.
    """
    from training.concept_ce import ConceptCE

    return ConceptCE.apply(concept_logits.float(), labels)


def kd_loss(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Mean over positions of KL(p_teacher || p_student) (in nats)."""
    import torch.nn.functional as F

    s = F.log_softmax(student_logits.flatten(0, -2).float(), dim=-1)
    t = F.log_softmax(teacher_logits.flatten(0, -2).float(), dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean")


# ---- the combination ----------------------------------------------------------------------
def forward(obj: Objective, model: Callable, x: Tensor, hooks_model: nn.Module,
            concepts: bool) -> tuple[Tensor, Tensor | None]:
    """(logits, concept logits or None) of the student as this objective runs it."""
    with _zeroed_concepts(hooks_model) if obj.zero_mix else contextlib.nullcontext():
        out = model(x, return_concept_logits=True) if concepts else model(x)
    return out if concepts else (out, None)


def compute_loss(obj: Objective, model: Callable, batch: Batch, weights: LossWeights,
                 hooks_model: nn.Module) -> tuple[Tensor, dict[str, Tensor]]:
    if obj.needs_labels and batch.labels is None:
        raise ValueError(f"objective {obj.name!r} needs concept labels: pass --labels DIR "
                         "(a label cache) or --teacher DIR --sae DIR (on-the-fly labels)")
    logits, concept_logits = forward(obj, model, batch.x, hooks_model, obj.concept_loss)
    parts = {"ntp": ntp_loss(logits, batch.y)}
    loss = parts["ntp"]
    if obj.concept_loss:
        parts["concept"] = concept_loss(concept_logits, batch.labels)
        loss = loss + weights.lam * parts["concept"]
    if obj.kd:
        parts["kd"] = kd_loss(logits, teacher_logits(weights.teacher, batch.x))
        loss = loss + weights.kd_weight * parts["kd"]
    return loss, {k: v.detach() for k, v in parts.items()}


def teacher_logits(teacher: nn.Module | None, x: Tensor) -> Tensor:
    if teacher is None:
        raise ValueError("objective 'kd' needs a teacher: pass --teacher DIR "
                         "(a mix_mode none model saved with save_pretrained)")
    import torch

    with torch.no_grad():
        return teacher(x)


def _zeroed_concepts(model: nn.Module):
    return model.hooks(fwd_hooks=[("concept.hook_vector", lambda c, hook: c * 0.0)])
