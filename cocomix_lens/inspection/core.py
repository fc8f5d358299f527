"""`inspect(run_or_model, text)`: what a CoCoMix student predicts and uses, token by token.

    from cocomix_lens.inspection import inspect
    res = inspect(run, "The river flows into the sea.")     # a Run, or a student model
    res.frame        # one row per (token, concept): student rank/prob, teacher rank/score, ...
    res.tokens       # one row per token: next token, log-prob, slot ablation deltas, P@k
    res.table()      # the readable table the CLI prints (a str)

Per token t (predicting x_{t+1}):
- the student's top-k concepts by predicted logit, with softmax probabilities over all C;
- with a teacher + SAE: the teacher's attribution labels for the same text
  (`ConceptExtractor.attribution_map`, no zero-score padding) and precision@k, the share of
  the student's top-k among the teacher's labels (NaN where the teacher has none);
- attribution: acts x gradient of the next-token logit at concept.hook_acts (one number per
  active concept), and the exact effect of ablating the slot c_t (zeroed, or mean-replaced)
  and of removing each shown concept from it alone (see slots.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from cocomix_lens.inspection.slots import SlotEffects, slot_effects

TOKEN_COLUMNS = ["pos", "token", "next_token", "logprob", "delta_zero", "delta_mean",
                 "precision_at_k", "n_teacher"]
FRAME_COLUMNS = ["pos", "token", "next_token", "concept", "name", "student_rank", "prob",
                 "logit", "active", "attribution", "concept_delta", "teacher_rank",
                 "teacher_score"]


@dataclass
class Inspection:
    """The result of `inspect`: two frames and the settings they were made with."""

    text: str
    k: int
    tokens: pd.DataFrame  # TOKEN_COLUMNS, one row per token
    frame: pd.DataFrame  # FRAME_COLUMNS, one row per (token, concept)
    has_teacher: bool

    def table(self, max_tokens: int | None = None) -> str:
        """A readable text table: per token, its student concepts and teacher labels."""
        from cocomix_lens.inspection.render import inspection_table

        return inspection_table(self, max_tokens)


def inspect(run_or_model: Any, text: str, k: int = 5, *, extractor: Any = None,
            catalogue: Any = None, ablate_concepts: bool = True) -> Inspection:
    """Inspect `text` with a run (student, and teacher/SAE/catalogue when it has them) or a
    CoCoMix model (then pass `extractor` = a ConceptExtractor and `catalogue` yourself)."""
    model, extractor, catalogue = _parts(run_or_model, extractor, catalogue)
    if not getattr(model.cfg, "has_concepts", False):
        raise ValueError(f"inspect needs a CoCoMix model with a concept head, got mix_mode "
                         f"{model.cfg.mix_mode!r}; pass the student (run.student)")
    if not 1 <= k <= model.cfg.n_concepts:
        raise ValueError(f"k={k} must be between 1 and the model's {model.cfg.n_concepts} "
                         "concepts")
    tokens = model.to_tokens(text)  # no BOS; cut to n_ctx
    if tokens.shape[1] < 2:
        raise ValueError(f"text {text!r} is one token long; inspect needs at least two")
    with torch.no_grad():
        _, z = model(tokens, return_concept_logits=True)
    z = z[0].float().cpu()  # [T, C]
    top = z.topk(k, dim=-1)
    mean = None if catalogue is None else catalogue.vector_mean
    effects = slot_effects(model, tokens, None if mean is None else torch.tensor(mean),
                           concepts=top.indices[:-1] if ablate_concepts else None)
    teacher = extractor.attribution_map(tokens[0], k=k) if extractor is not None else None
    words = model.to_str_tokens(tokens[0])
    frame = _frame(z, top.indices, effects, teacher, catalogue, words, ablate_concepts)
    token_rows = _token_frame(words, effects, teacher, top.indices, k)
    return Inspection(text=text, k=k, tokens=token_rows, frame=frame,
                      has_teacher=teacher is not None)


def _parts(obj: Any, extractor: Any, catalogue: Any) -> tuple[Any, Any, Any]:
    """(student, extractor or None, catalogue or None) from a Run or a model."""
    if not hasattr(obj, "student"):  # a model
        return obj, extractor, catalogue
    if extractor is None and obj.has("teacher") and obj.has("sae"):
        from cocomix_lens.concepts import ConceptExtractor

        method = obj.labels.meta["method"] if obj.has("labels") else "attribution"
        extractor = ConceptExtractor(obj.teacher, obj.sae, method=method)
    if catalogue is None and obj.has("catalogue"):
        catalogue = obj.catalogue
    return obj.student, extractor, catalogue


def _pairs(student_ids: Tensor, teacher_ids: Tensor | None, n_concepts: int) -> np.ndarray:
    """Sorted unique (pos * C + concept) keys of every shown (token, concept) pair."""
    t = student_ids.shape[0]
    keys = [(torch.arange(t)[:, None] * n_concepts + student_ids).flatten()]
    if teacher_ids is not None:
        valid = teacher_ids >= 0
        keys.append((torch.arange(t)[:, None] * n_concepts + teacher_ids)[valid])
    return np.unique(torch.cat(keys).numpy())


def _rank_lookup(ids: Tensor, n_concepts: int) -> Tensor:
    """[T, C] float: 1-based rank of each concept in `ids` [T, k] (-1 = none), NaN elsewhere."""
    ranks = torch.full((ids.shape[0], n_concepts), float("nan"))
    valid = ids >= 0
    rank = torch.arange(1, ids.shape[1] + 1, dtype=torch.float).expand_as(ids)
    rows = torch.arange(ids.shape[0])[:, None].expand_as(ids)
    ranks[rows[valid], ids[valid]] = rank[valid]
    return ranks


def _frame(z: Tensor, student_ids: Tensor, eff: SlotEffects, teacher: Any, catalogue: Any,
           words: list[str], ablated: bool) -> pd.DataFrame:
    n_tok, n_c = z.shape
    keys = _pairs(student_ids, None if teacher is None else teacher.ids.cpu(), n_c)
    pos, concept = keys // n_c, keys % n_c
    probs = z.softmax(-1)
    s_rank = _rank_lookup(student_ids, n_c)
    pad = torch.full((1, n_c), float("nan"))  # the last token has no slot effects
    attribution = torch.cat([eff.attribution.cpu(), pad])
    active = torch.cat([eff.acts.cpu() != 0, torch.zeros(1, n_c, dtype=torch.bool)])
    delta = torch.full((n_tok, n_c), float("nan"))
    if ablated:
        rows = torch.arange(n_tok - 1)[:, None].expand_as(student_ids[:-1])
        delta[rows, student_ids[:-1]] = eff.concept_delta.cpu()
    df = pd.DataFrame({
        "pos": pos, "token": np.asarray(words, dtype=object)[pos],
        "next_token": np.asarray(words[1:] + [None], dtype=object)[pos],
        "concept": concept, "name": _names(catalogue, concept),
        "student_rank": s_rank[pos, concept].numpy(), "prob": probs[pos, concept].numpy(),
        "logit": z[pos, concept].numpy(), "active": active[pos, concept].numpy(),
        "attribution": attribution[pos, concept].numpy(),
        "concept_delta": delta[pos, concept].numpy()})
    if teacher is not None:
        t_ids = teacher.ids.cpu()
        t_scores = torch.zeros(n_tok, n_c)
        valid = t_ids >= 0
        t_scores[torch.arange(n_tok)[:, None].expand_as(t_ids)[valid], t_ids[valid]] = \
            teacher.scores.cpu().float()[valid]
        t_rank = _rank_lookup(t_ids, n_c)[pos, concept].numpy()
        df["teacher_rank"] = t_rank
        df["teacher_score"] = np.where(np.isnan(t_rank), np.nan, t_scores[pos, concept].numpy())
    else:
        df["teacher_rank"] = np.nan
        df["teacher_score"] = np.nan
    order = np.lexsort((df["teacher_rank"].fillna(1e9), df["student_rank"].fillna(1e9),
                        df["pos"]))
    return df.iloc[order].reset_index(drop=True)[FRAME_COLUMNS]


def _names(catalogue: Any, concepts: np.ndarray) -> np.ndarray:
    if catalogue is None:
        return np.full(len(concepts), None, dtype=object)
    return catalogue.concepts["name"].to_numpy()[concepts]


def _token_frame(words: list[str], eff: SlotEffects, teacher: Any, student_ids: Tensor,
                 k: int) -> pd.DataFrame:
    n_tok = len(words)
    nan = np.full(1, np.nan)
    precision = np.full(n_tok, np.nan)
    n_teacher = np.zeros(n_tok, dtype=np.int64)
    if teacher is not None:
        t_ids = teacher.ids.cpu()
        n_teacher = (t_ids >= 0).sum(-1).numpy()
        hits = (student_ids[:, :, None] == t_ids[:, None, :]) & (t_ids[:, None, :] >= 0)
        precision = np.where(n_teacher > 0, hits.any(-1).sum(-1).numpy() / k, np.nan)
    return pd.DataFrame({
        "pos": np.arange(n_tok), "token": words, "next_token": words[1:] + [None],
        "logprob": np.concatenate([eff.logprob.cpu().numpy(), nan]),
        "delta_zero": np.concatenate([eff.delta_zero.cpu().numpy(), nan]),
        "delta_mean": np.concatenate([eff.delta_mean.cpu().numpy(), nan]),
        "precision_at_k": precision, "n_teacher": n_teacher})[TOKEN_COLUMNS]
