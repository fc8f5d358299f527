"""The world's own steering-benchmark pieces, built from its grammar: the prompting families
that put the world's topic cues before an opening or its topic-switch line after it, the
transplant family read off that switch line, and the means it is read from (`switch_means`).

Importing this module registers the families into `cocomix_lens.steering.topic_methods`
(`register_family`; `steering/` never names the world), as `world.steering_scorers`
registers the oracle's scorers; the world bench (`training/steer_bench.py`) imports both.

    import cocomix_lens.world.steer_topics  # noqa: F401  (registers the world's families)
    TopicMethod("prompt_cue", "", "farming").prompt(opening)   # cue_before(...) + opening
    means = switch_means(run, ["concept.hook_vector"], ["farming", "sea"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from cocomix_lens.steering.diffmean import TopicMeans, accumulate_means
from cocomix_lens.steering.topic_methods import Family, TopicMethod, register_family
from cocomix_lens.world.openings import Opening, cue_before, openings, switch_line


def _cue_before(m: TopicMethod, opening: Opening) -> str:
    return cue_before(m.topic, opening.tense, m.seed) + opening.text


def _switch_after(m: TopicMethod, opening: Opening) -> str:
    return opening.text + switch_line(m.topic, opening.tense, m.seed)


WORLD_FAMILIES = tuple(register_family(f) for f in (
    Family("switch_vector", "student", "x (mean c_t after the topic-switch line toward T - "
           "after the lines toward other topics)",
           "transplant from prompting: the student's concept vector right after the corpus's "
           "topic-switch line (steer_topics.switch_means) as a `vector` edit of c_t",
           world=True),
    Family("prompt_cue", "student", "none", "two topic sentences put before the opening",
           _cue_before, world=True),
    Family("prompt_switch", "student", "none",
           "the corpus's topic-switch line put after the opening", _switch_after, world=True),
))
"""The families the world registers (each `world=True`: they need the world's grammar)."""


@torch.no_grad()
def switch_means(run: Any, hooks: Sequence[str], topics: Sequence[str], split: str = "train",
                 n_openings: int = 64, seed: int = 0) -> TopicMeans:
    """Per topic T, the student's activations at `hooks` at the last token of "opening + the
    corpus's topic-switch line toward T" (`world.openings.switch_line`), over the first
    `n_openings` openings of `split` on other topics: the state in which the model has just
    been told the talk turns to T, whose slot predicts the first token of a sentence on T.
    `diffmean(hook, T)` is that mean minus the mean over the other topics' switch lines."""
    from cocomix_lens.data.tokenizer import eos_id, prompt_ids

    model, tok = run.student, run.tokenizer
    pool = openings(run.shards, split, limit=4 * n_openings)  # enough of other topics
    rows, ends = [], []
    for i, t in enumerate(topics):
        for o in [o for o in pool if o.topic != t][:n_openings]:
            rows.append(prompt_ids(tok, o.text + switch_line(t, o.tense, seed)))
            ends.append(i)
    width = max(map(len, rows))
    windows = torch.full((len(rows), width), eos_id(tok), dtype=torch.long)
    labels = np.full((len(rows), width), -1, dtype=np.int64)
    for r, (ids, i) in enumerate(zip(rows, ends)):
        windows[r, :len(ids)] = torch.tensor(ids)  # padded on the right: causal, unread
        labels[r, len(ids) - 1] = i
    return accumulate_means(model, windows, labels, list(topics), hooks)
