"""One vectorised pass over the validation split: what the teacher's SAE and the student's
concept head do at every token, reduced to per-concept statistics and running top-n positions.

Windows are the label cache's (non-overlapping, length L, the tail window alone), so the
student sees each token in the same context it was trained on. Per batch of windows:
    acts  [B*L, C]  teacher SAE activations at the SAE hook (the SAE's own encode)
    z     [B*L, C]  student concept logits (concept.hook_logits)
    c     [B*L, d]  student concept vectors c_t (concept.hook_vector)
The student's forward stops right after the concept head: nothing above it is needed.

`concept_activity` is the one pass that reads the student's concept head over a split's
windows; the scan, the pipeline's groundtruth stage and the app's logit distributions all read
through it (`concept_logits` gathers a short split's logits into one array).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from cocomix_lens.concepts.capture import activations_at
from cocomix_lens.concepts.extractor import ConceptExtractor
from cocomix_lens.progress import Progress

LOGITS, VECTOR = "concept.hook_logits", "concept.hook_vector"


class RunningTop:
    """The n largest values per concept seen so far and the token positions they came from.

    values [C, n] descending, -inf while fewer than n positions were seen; positions [C, n]
    int64 (-1 likewise). Between batches, ties keep the earlier position.
    """

    def __init__(self, n_concepts: int, n: int) -> None:
        self.values = torch.full((n_concepts, n), float("-inf"))
        self.positions = torch.full((n_concepts, n), -1, dtype=torch.long)

    def update(self, values: Tensor, positions: Tensor) -> None:
        """values [N, C] at token positions [N] (increasing, after every earlier batch)."""
        n = self.values.shape[1]
        # the batch's own top n first (one topk over [N, C]), then a stable merge of 2n
        top = values.float().topk(min(n, len(values)), dim=0)  # [n', C]
        both = torch.cat([self.values, top.values.T], dim=1)  # [C, n + n']
        cand = torch.cat([self.positions, positions[top.indices].T], dim=1)
        order = both.sort(dim=1, descending=True, stable=True).indices[:, :n]
        self.values = both.gather(1, order)
        self.positions = cand.gather(1, order)


@dataclass
class Scan:
    """Per-concept sums over the validation tokens and the top positions of both readouts."""

    n_concepts: int
    n_examples: int
    student_k: int
    activity_limit: int = 65_536
    """Positions below this keep every active entry (activity(): explanations, histograms)."""
    n_positions: int = 0
    act_count: Tensor = field(init=False)  # [C] positions where the SAE latent is > 0
    pred_count: Tensor = field(init=False)  # [C] positions where c is in the student top-k
    logit_sum: Tensor = field(init=False)  # [C] float64 sum of z
    logit_sq: Tensor = field(init=False)  # [C] float64 sum of z^2
    vector_sum: Tensor | None = None  # [d_model] float64 sum of c_t
    top_act: RunningTop = field(init=False)
    top_logit: RunningTop = field(init=False)
    _activity: dict[str, list[Tensor]] = field(init=False)  # source -> [M, 3] chunks

    def __post_init__(self) -> None:
        c = self.n_concepts
        self.act_count = torch.zeros(c, dtype=torch.long)
        self.pred_count = torch.zeros(c, dtype=torch.long)
        self.logit_sum = torch.zeros(c, dtype=torch.float64)
        self.logit_sq = torch.zeros(c, dtype=torch.float64)
        self.top_act = RunningTop(c, self.n_examples)
        self.top_logit = RunningTop(c, self.n_examples)
        self._activity = {"teacher": [], "student": []}

    def add(self, acts: Tensor, z: Tensor, c: Tensor, positions: Tensor) -> None:
        """acts, z [N, C]; c [N, d_model]; positions [N] global token positions."""
        self.n_positions += len(positions)
        self.act_count += (acts > 0).sum(0)
        top = z.topk(self.student_k, dim=-1).indices
        self.pred_count += torch.bincount(top.flatten(), minlength=self.n_concepts)
        # per-batch sums in float32 (a few thousand terms), accumulated in float64
        self.logit_sum += z.sum(0).double()
        self.logit_sq += z.square().sum(0).double()
        vec = c.sum(0).double()
        self.vector_sum = vec if self.vector_sum is None else self.vector_sum + vec
        self.top_act.update(acts, positions)
        self.top_logit.update(z, positions)
        keep = positions < self.activity_limit
        if keep.any():
            row, col = (acts[keep] > 0).nonzero(as_tuple=True)
            self._keep("teacher", positions[keep][row], col, acts[keep][row, col])
            row = torch.arange(int(keep.sum()))[:, None].expand(-1, top.shape[1])
            self._keep("student", positions[keep][row.flatten()], top[keep].flatten(),
                       z[keep].gather(1, top[keep]).flatten())

    def _keep(self, source: str, positions: Tensor, concepts: Tensor, values: Tensor) -> None:
        self._activity[source].append(torch.stack(
            [positions.double(), concepts.double(), values.double()], 1))

    def activity(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """source -> (positions int64 [M], concepts int64 [M], values float32 [M]): every
        position below activity_limit where the SAE latent is > 0 ("teacher") or the concept
        is in the student's top-k ("student", value = its logit), in position order."""
        out = {}
        for source, chunks in self._activity.items():
            a = torch.cat(chunks).numpy() if chunks else np.zeros((0, 3))
            out[source] = (a[:, 0].astype(np.int64), a[:, 1].astype(np.int64),
                           a[:, 2].astype(np.float32))
        return out

    def logit_mean_std(self) -> tuple[Tensor, Tensor]:
        """[C] mean and (population) std of the student's concept logits over the tokens."""
        n = max(self.n_positions, 1)
        mean = self.logit_sum / n
        var = (self.logit_sq / n - mean * mean).clamp(min=0.0)
        return mean, var.sqrt()


def window_starts(n_tokens: int, window: int, tail: bool = True) -> list[np.ndarray]:
    """Start positions grouped by window length: full windows, then (with `tail`) the short
    tail alone."""
    n_full = n_tokens // window
    groups = [np.arange(n_full, dtype=np.int64) * window]
    if tail and n_tokens % window > 1:  # a one-token tail has no context worth reading
        groups.append(np.array([n_full * window], dtype=np.int64))
    return [g for g in groups if len(g)]


def _batches(tokens: np.ndarray, window: int, batch_size: int,
             tail: bool = True) -> Iterator[tuple[Tensor, Tensor]]:
    """(x [B, L] int64, positions [B*L]) for every window of the split, in position order."""
    for starts in window_starts(len(tokens), window, tail):
        length = min(window, len(tokens) - int(starts[0]))
        for lo in range(0, len(starts), batch_size):
            idx = starts[lo:lo + batch_size, None] + np.arange(length)
            yield torch.from_numpy(tokens[idx].astype(np.int64)), torch.from_numpy(idx.ravel())


def n_batches(n_tokens: int, window: int, batch_size: int, tail: bool = True) -> int:
    return sum(-(-len(s) // batch_size) for s in window_starts(n_tokens, window, tail))


@dataclass
class ActivityBatch:
    """One batch of `concept_activity`: windows of the split and what the student's concept
    head reads at each of their tokens."""

    x: Tensor  # [B, L] int64 token ids (CPU)
    positions: Tensor  # [B*L] int64 positions in the split
    logits: Tensor  # [B*L, C] float32 (CPU): concept logits z (concept.hook_logits)
    vectors: Tensor | None = None  # [B*L, d_model] float32 (CPU) c_t, with vectors=True


def concept_activity(student: nn.Module, tokens: np.ndarray, *, window: int,
                     batch_size: int = 16, tail: bool = True,
                     vectors: bool = False) -> Iterator[ActivityBatch]:
    """The student's concept activity over a split, one batch at a time: `tokens` [n] cut into
    non-overlapping windows of `window` tokens from the start (with `tail`, the short tail
    window last and alone; without, full windows only), `batch_size` windows per forward,
    which stops after the concept head. The one pass the catalogue's scan, the groundtruth
    stage and the app read concept activity through."""
    hooks = [LOGITS, VECTOR] if vectors else [LOGITS]
    device = student.W_E.device
    for x, pos in _batches(tokens, window, batch_size, tail):
        got = activations_at(student, hooks, x.to(device))
        yield ActivityBatch(x, pos, got[LOGITS].reshape(len(pos), -1).float().cpu(),
                            got[VECTOR].reshape(len(pos), -1).float().cpu() if vectors
                            else None)


def concept_logits(student: nn.Module, tokens: np.ndarray, *, window: int,
                   batch_size: int = 16, tail: bool = True) -> np.ndarray:
    """[positions, C] float32: `concept_activity`'s logits of every window, in position
    order (n x C floats: for short splits)."""
    z = [b.logits.numpy() for b in concept_activity(student, tokens, window=window,
                                                    batch_size=batch_size, tail=tail)]
    return np.concatenate(z) if z else np.zeros((0, student.cfg.n_concepts), np.float32)


@torch.no_grad()
def scan_split(tokens: np.ndarray, extractor: ConceptExtractor, student: nn.Module, *,
               window: int, n_examples: int, batch_size: int = 16,
               activity_limit: int = 65_536, progress: Progress | None = None) -> Scan:
    """Run teacher+SAE and the student's concept head over every window of `tokens` [n]."""
    n_c = int(extractor.n_latents)
    scan = Scan(n_concepts=n_c, n_examples=n_examples, student_k=student.cfg.concept_top_k,
                activity_limit=activity_limit)
    batches = concept_activity(student, tokens, window=window, batch_size=batch_size,
                               vectors=True)
    total = n_batches(len(tokens), window, batch_size)
    for b in progress(batches, total, "catalogue: scan val") if progress else batches:
        acts = extractor.scores(b.x).reshape(-1, n_c)
        scan.add(acts.float().cpu(), b.logits, b.vectors, b.positions)
    return scan
