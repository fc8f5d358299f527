"""What the Inspect page shows for a text: student concept probabilities per token, the
teacher's attribution labels, their agreement, and the effect of ablating the concept slot.

    view = inspect_text(student, text, teacher=(teacher, sae), k=4)
    view.probs      # [n_shown_concepts, pos] student probabilities of the most active concepts
    view.agreement  # [pos] |student top-k ∩ teacher top-k| / k (nan where the teacher has none)
    view.ablation   # [pos] Δ log p(actual next token) when c_t is zeroed (nan at the last token)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from app.config import MAX_INSPECT_TOKENS


@dataclass
class InspectView:
    tokens: list[str]
    concepts: list[int]  # shown concepts, most active first
    probs: np.ndarray  # [len(concepts), pos]
    student_top: np.ndarray  # [pos, k] student's top-k concept ids
    teacher_top: np.ndarray | None  # [pos, k] teacher's attribution labels (-1: none)
    agreement: np.ndarray  # [pos]
    ablation: np.ndarray  # [pos]

    def table(self, names: dict[int, str]) -> pd.DataFrame:
        """One row per token: its text, the student's and teacher's concepts, agreement, Δ."""
        fmt = lambda ids: ", ".join(f"{c} {names.get(int(c), '')}".strip() for c in ids if c >= 0)
        rows = []
        for i, tok in enumerate(self.tokens):
            rows.append({"pos": i, "token": tok, "student": fmt(self.student_top[i]),
                         "teacher": fmt(self.teacher_top[i]) if self.teacher_top is not None
                         else "", "agreement": self.agreement[i],
                         "ablation Δlogp": self.ablation[i]})
        return pd.DataFrame(rows)


def encode_text(tokenizer, text: str, n_ctx: int) -> torch.Tensor:
    if not text or not text.strip():
        raise ValueError("the text is empty: type or paste some text to inspect")
    ids = tokenizer.encode(text).ids
    cap = min(MAX_INSPECT_TOKENS, n_ctx)
    if len(ids) > cap:
        raise ValueError(f"the text is {len(ids)} tokens, more than the {cap} this page "
                         "inspects: shorten it")
    return torch.tensor([ids], dtype=torch.long)


@torch.no_grad()
def _ablation(model, ids: torch.Tensor) -> np.ndarray:
    """Δ log p(next token) at each position when the concept vector c_t is zeroed."""
    def logp(hooks):
        with model.hooks(fwd_hooks=hooks):
            lp = model(ids).float().log_softmax(-1)[0, :-1]
        return lp.gather(-1, ids[0, 1:, None])[:, 0]

    out = np.full(ids.shape[1], np.nan)
    if ids.shape[1] > 1 and "concept.hook_vector" in model.hook_dict:
        zero = [("concept.hook_vector", lambda v, hook: torch.zeros_like(v))]
        out[:-1] = (logp(zero) - logp([])).cpu().numpy()
    return out


def inspect_text(model, text: str, teacher=None, k: int = 4, n_show: int = 12) -> InspectView:
    """Inspect `text` with the student `model` (and `teacher` = (model, sae) when given)."""
    ids = encode_text(model.tokenizer, text, int(model.cfg.n_ctx)).to(model.device)
    with torch.no_grad():
        _, z = model(ids, return_concept_logits=True)
    probs = z[0].float().softmax(-1)  # [pos, C]
    student_top = probs.topk(k, dim=-1).indices.cpu().numpy()
    shown = probs.max(0).values.topk(min(n_show, probs.shape[-1])).indices.tolist()
    teacher_top = None
    agreement = np.full(ids.shape[1], np.nan)
    if teacher is not None:
        from cocomix_lens.concepts import ConceptExtractor

        t_model, sae = teacher
        t_ids, t_scores = ConceptExtractor(t_model, sae).labels(ids.to(t_model.device), k=k)
        teacher_top = torch.where(t_scores[0] > 0, t_ids[0], -1).cpu().numpy()
        for i in range(ids.shape[1]):
            real = {int(c) for c in teacher_top[i] if c >= 0}
            if real:
                agreement[i] = len(real & set(student_top[i].tolist())) / len(real)
    tokens = [model.tokenizer.decode([t]) for t in ids[0].tolist()]
    return InspectView(tokens=tokens, concepts=shown, probs=probs[:, shown].T.cpu().numpy(),
                       student_top=student_top, teacher_top=teacher_top, agreement=agreement,
                       ablation=_ablation(model, ids))
