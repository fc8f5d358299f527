"""Window sampling: which token windows make up each batch (nanoGPT-style random windows).

Batch `step` is drawn from a generator seeded by (seed, step) alone, so the sampler's whole
state is the step counter: a run resumed from `state_dict()` sees exactly the batches an
uninterrupted run would. For distributed runs every rank draws the same global batch of
world_size * batch_size windows and keeps its own slice, so ranks never overlap and the
global batch does not depend on how it is split across ranks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

_STATE_VERSION = 1


def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise ValueError(msg)


class WindowSampler:
    """Random window starts over a split of `n_tokens` tokens.

    Each window is seq_len+1 tokens: x = tok[s:s+seq_len], y = tok[s+1:s+seq_len+1].
    `align=L` makes every start a multiple of L (label-cache windows)."""

    def __init__(self, n_tokens: int, seq_len: int, batch_size: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1, align: int = 1) -> None:
        _check(seq_len >= 1 and batch_size >= 1 and align >= 1,
               f"seq_len, batch_size and align must be >= 1, got {seq_len}, {batch_size}, "
               f"{align}")
        _check(n_tokens >= seq_len + 1,
               f"a split of {n_tokens} tokens holds no window of seq_len+1 = {seq_len + 1} "
               "tokens; fix: lower seq_len or prepare more data")
        _check(0 <= rank < world_size, f"rank {rank} is not in [0, world_size={world_size})")
        _check(seed >= 0, f"seed must be >= 0, got {seed}")
        self.n_tokens, self.seq_len, self.batch_size = n_tokens, seq_len, batch_size
        self.seed, self.rank, self.world_size, self.align = seed, rank, world_size, align
        # Aligned starts k*align with k*align + seq_len + 1 <= n_tokens.
        self.n_starts = (n_tokens - seq_len - 1) // align + 1
        self.step = 0

    def starts_at(self, step: int) -> np.ndarray:
        """This rank's window starts of batch `step`, np.int64 [batch_size]."""
        rng = np.random.default_rng([self.seed, step])
        glob = rng.integers(0, self.n_starts, size=self.world_size * self.batch_size)
        lo = self.rank * self.batch_size
        return glob[lo: lo + self.batch_size].astype(np.int64) * self.align

    def next_starts(self) -> np.ndarray:
        """Starts of the next batch, np.int64 [batch_size]; advances the state."""
        starts = self.starts_at(self.step)
        self.step += 1
        return starts

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            yield self.next_starts()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume; rank-independent, so rank 0 may save for all."""
        return {"version": _STATE_VERSION, "step": self.step, "seed": self.seed,
                "n_tokens": self.n_tokens, "seq_len": self.seq_len, "align": self.align,
                "global_batch": self.world_size * self.batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from `state_dict()`; ValueError if it describes a different stream."""
        mine = self.state_dict()
        for key in ("version", "seed", "n_tokens", "seq_len", "align", "global_batch"):
            _check(state.get(key) == mine[key],
                   f"sampler state was saved with {key}={state.get(key)} but this run has "
                   f"{key}={mine[key]}; fix: resume with the same data and batch settings")
        self.step = int(state["step"])


def sequential_starts(n_tokens: int, seq_len: int, limit: int | None = None) -> np.ndarray:
    """Starts of consecutive non-overlapping windows covering a split (for evaluation),
    np.int64; with `limit`, an evenly spaced subset of at most `limit` of them."""
    _check(n_tokens >= seq_len + 1, f"a split of {n_tokens} tokens holds no window of "
           f"{seq_len + 1} tokens; fix: lower seq_len")
    starts = np.arange(0, n_tokens - seq_len, seq_len, dtype=np.int64)
    if limit is not None and len(starts) > limit:
        starts = starts[np.linspace(0, len(starts) - 1, limit).round().astype(np.int64)]
    return starts
