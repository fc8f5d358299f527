"""The Inspect page's view of `cocomix_lens.inspection.inspect(run, text)`: the frame of
(token, concept) rows pivoted into heatmaps, plus the per-token agreement and ablation.

    view = inspect_text(run, text)
    view.student    # [n_concepts_shown, pos] student probabilities (0 where not in its top-k)
    view.teacher    # [n_teacher_concepts, pos] teacher attribution scores (NaN: not a label)
    view.tokens     # the library's per-token frame (precision_at_k, delta_zero, delta_mean ...)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.config import MAX_INSPECT_TOKENS

N_SHOWN = 12  # concepts in each heatmap
FALLBACK_TEXT = "The ship sailed out of the harbor before the storm."  # a run without data


def default_text(run) -> str:
    """The opening of the run's first validation document (its first sentence, within 48
    tokens), so the text is in the run's own vocabulary; FALLBACK_TEXT for a run without
    token shards (a bare `train` run)."""
    from cocomix_lens.steering.evaluate import default_prompts

    if not run.has("shards"):
        return FALLBACK_TEXT
    return default_prompts(run, n=1, n_tokens=32, max_sentence=48)[0].strip() or FALLBACK_TEXT


@dataclass
class InspectView:
    words: list[str]
    tokens: pd.DataFrame  # inspection TOKEN_COLUMNS
    frame: pd.DataFrame  # inspection FRAME_COLUMNS
    student_concepts: list[int]
    student: np.ndarray  # [len(student_concepts), pos]
    teacher_concepts: list[int]
    teacher: np.ndarray  # [len(teacher_concepts), pos]
    has_teacher: bool

    def table(self, names: dict[int, str]) -> pd.DataFrame:
        """One row per token: the student's concepts, the teacher's labels, P@k, Δ log p."""
        f = self.frame
        label = lambda c: f"{c} {names.get(int(c), '')}".strip()
        joined = lambda rows, rank: ", ".join(label(c) for c in rows.sort_values(rank).concept)
        rows = []
        for _, t in self.tokens.iterrows():
            here = f[f.pos == t.pos]
            rows.append({"pos": t.pos, "token": t.token,
                         "student top-k": joined(here[here.student_rank.notna()],
                                                 "student_rank"),
                         "teacher labels": joined(here[here.teacher_rank.notna()],
                                                  "teacher_rank"),
                         "P@k": t.precision_at_k, "Δ log p (c_t zeroed)": t.delta_zero})
        return pd.DataFrame(rows)


def check_text(text: str, tokenizer) -> None:
    """One-line ValueError for empty or overlong text."""
    if not text or not text.strip():
        raise ValueError("the text is empty: type or paste some text to inspect")
    n = len(tokenizer.encode(text).ids)
    if n > MAX_INSPECT_TOKENS:
        raise ValueError(f"the text is {n} tokens, more than the {MAX_INSPECT_TOKENS} this "
                         "page inspects: shorten it")


def _pivot(frame: pd.DataFrame, value: str, rank: str, n_pos: int,
           fill: float) -> tuple[list[int], np.ndarray]:
    """(concepts ranked by their best value, matrix [concepts, pos]) of rows with a `rank`."""
    rows = frame[frame[rank].notna()]
    if rows.empty:
        return [], np.zeros((0, n_pos))
    best = rows.groupby("concept")[value].max().sort_values(ascending=False)
    concepts = [int(c) for c in best.index[:N_SHOWN]]
    mat = np.full((len(concepts), n_pos), fill)
    index = {c: i for i, c in enumerate(concepts)}
    for c, p, v in zip(rows.concept, rows.pos, rows[value]):
        if int(c) in index:
            mat[index[int(c)], int(p)] = v
    return concepts, mat


def inspect_text(run, text: str, k: int = 5) -> InspectView:
    """Inspect `text` with the run's student (and teacher, SAE and catalogue if present)."""
    from cocomix_lens.inspection import inspect

    check_text(text, run.tokenizer)
    res = inspect(run, text, k=k)
    n = len(res.tokens)
    s_c, s_m = _pivot(res.frame, "prob", "student_rank", n, 0.0)
    t_c, t_m = _pivot(res.frame, "teacher_score", "teacher_rank", n, np.nan)
    return InspectView(words=res.tokens.token.tolist(), tokens=res.tokens, frame=res.frame,
                       student_concepts=s_c, student=s_m, teacher_concepts=t_c, teacher=t_m,
                       has_teacher=res.has_teacher)
