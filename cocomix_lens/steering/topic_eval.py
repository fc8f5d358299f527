"""Steering toward a world topic, scored per continuation by the oracle (AxBench's three
scores, exact instead of judged by an LLM).

    scores = evaluate_method(run, method, split.report, sampling, n_samples=4)
    scores.concept, scores.fluency, scores.relevance, scores.harmonic   # [n] per continuation
    summary = summarise([scores, ...])   # means, prompt-bootstrap CIs, spread

Per continuation (generated text only, the prompt excluded):
- concept: share of its sentences on the target topic (`oracle_on_target`);
- fluency: share of its sentences the grammar parses (`oracle_grammatical`), and the NTP
  student's perplexity of it (`ppl_ntp`, a second figure);
- relevance: share of its sentences about a character the opening named
  (`oracle_relevance`);
- harmonic: their harmonic mean, 0 when any of the three is 0 (AxBench's rule).
Every prompt is generated `n_samples` times; prompts of one token length are generated as one
batch through the KV cache (no padding: the model has no attention mask).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cocomix_lens.sampling import Sampling
from cocomix_lens.steering.evaluate import _pack, encode_prompts, score
from cocomix_lens.steering.scorers import Generations, scorers_for
from cocomix_lens.steering.topic_methods import TopicMethod
from cocomix_lens.world.openings import Opening

SCORES = {"concept": "oracle_on_target", "fluency": "oracle_grammatical",
          "relevance": "oracle_relevance", "ppl": "ppl_ntp"}
"""Benchmark score -> the registered scorer that computes it."""
HARMONIC_OF = ("concept", "fluency", "relevance")


def harmonic(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Per-sample harmonic mean of [n] arrays in [0, 1]; 0 where any part is 0 (or NaN)."""
    stack = np.nan_to_num(np.stack([np.asarray(p, dtype=np.float64) for p in parts]))
    ok = (stack > 0).all(0)
    out = np.zeros(stack.shape[1])
    out[ok] = len(parts) / (1.0 / stack[:, ok]).sum(0)
    return out


def generate_batched(model: Any, tokenizer: Any, prompts: Sequence[str], n_samples: int,
                     sampling: Sampling, method: TopicMethod | None = None,
                     batch_size: int = 64) -> Generations:
    """`n_samples` continuations of each prompt (row i * n_samples + j: prompt i, sample j),
    prompts of equal token length generated together, inside `method`'s context. The seed
    of a group depends on (sampling.seed, its token length, its first prompt's index)."""
    from cocomix_lens.data.tokenizer import eos_id

    ids = encode_prompts(tokenizer, prompts)
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(ids):
        groups.setdefault(len(p), []).append(i)
    eos = eos_id(tokenizer)
    edit = method.method() if method is not None else None
    rows: list[tuple[int, torch.Tensor, int]] = []
    for length, members in sorted(groups.items()):
        batch = torch.stack([ids[i] for i in members]).repeat_interleave(n_samples, 0)
        for b in range(0, len(batch), batch_size):
            chunk = batch[b:b + batch_size]
            seed = sampling.seed * 1_000_003 + length * 1_009 + members[0] * 7 + b
            with edit.context(model, length) if edit is not None else nullcontext():
                out = model.generate(chunk, **{**sampling.kwargs(), "seed": seed},
                                     stop_tokens=[eos])
            for r in range(len(chunk)):
                flat = b + r
                i = members[flat // n_samples]
                rows.append((i * n_samples + flat % n_samples, out[r].cpu(), length))
    rows.sort(key=lambda r: r[0])
    return _pack(rows, eos, tokenizer)


@dataclass
class MethodScores:
    """Per-continuation scores of one method on one topic's prompts."""

    method: TopicMethod
    prompts: list[str]  # the openings (as given, before any prompting cue)
    n_samples: int
    values: dict[str, np.ndarray]  # score -> [n_prompts * n_samples]
    examples: list[str]

    @property
    def harmonic(self) -> np.ndarray:
        return harmonic([self.values[s] for s in HARMONIC_OF])

    def per_prompt(self, name: str) -> np.ndarray:
        """[n_prompts] mean of score `name` (or "harmonic") over each prompt's samples."""
        v = self.harmonic if name == "harmonic" else self.values[name]
        return np.asarray(v, dtype=np.float64).reshape(len(self.prompts), self.n_samples).mean(1)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method.to_dict(), "prompts": self.prompts,
                "n_samples": self.n_samples,
                "values": {k: [round(float(x), 6) for x in v] for k, v in self.values.items()},
                "examples": self.examples}

    @classmethod
    def from_dict(cls, blob: dict[str, Any]) -> MethodScores:
        return cls(TopicMethod.from_dict(blob["method"]), list(blob["prompts"]),
                   int(blob["n_samples"]),
                   {k: np.asarray(v, dtype=np.float64) for k, v in blob["values"].items()},
                   list(blob.get("examples", [])))


def evaluate_method(run: Any, method: TopicMethod, openings: Sequence[Opening],
                    sampling: Sampling, n_samples: int = 4, concept: int = 0,
                    n_examples: int = 3) -> MethodScores:
    """Generate `n_samples` continuations per opening with `method` and score them with no
    edit active. `concept` is only read by scorers that need one (none of SCORES does)."""
    model = getattr(run, method.model)
    prompts = [method.prompt(o) for o in openings]
    gens = generate_batched(model, run.tokenizer, prompts, n_samples, sampling, method)
    scorers = scorers_for(run, list(SCORES.values()))
    raw = score(run, concept, gens, scorers, 64, {"topic": method.topic})
    values = {name: raw[scorer] for name, scorer in SCORES.items()}
    return MethodScores(method, [o.text for o in openings], n_samples, values,
                        gens.texts[:n_examples * n_samples:n_samples])


def summarise(scores: Sequence[MethodScores], n_boot: int = 2000, seed: int = 0,
              level: float = 0.95) -> dict[str, Any]:
    """One method over topics: per score (and "harmonic") the mean over every prompt of every
    topic with a bootstrap CI resampling prompts, the per-topic means and their spread, and
    the spread over prompts."""
    from cocomix_lens.steering.stats import bootstrap

    out: dict[str, Any] = {"topics": [s.method.topic for s in scores],
                           "n_prompts": sum(len(s.prompts) for s in scores)}
    for name in (*SCORES, "harmonic"):
        per_prompt = np.concatenate([s.per_prompt(name) for s in scores])
        finite = per_prompt[np.isfinite(per_prompt)]
        est = bootstrap(finite, n_boot, seed, level)
        per_topic = {s.method.topic: float(np.nanmean(s.per_prompt(name))) for s in scores}
        topic_vals = np.array(list(per_topic.values()))
        out[name] = {**est.to_dict(), "per_topic": per_topic,
                     "topic_spread": _spread(topic_vals), "prompt_spread": _spread(finite)}
    return out


def _spread(v: np.ndarray) -> dict[str, float]:
    v = v[np.isfinite(v)]
    if not v.size:
        return {"min": float("nan"), "median": float("nan"), "max": float("nan")}
    return {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}


LEADERBOARD = ("method", "harmonic mean", "concept", "fluency (grammar)", "relevance",
               "NTP perplexity", "harmonic per topic: min / median / max")


def leaderboard(results: dict[str, Any]) -> tuple[tuple[str, ...], list[list[str]]]:
    """(header, rows) of a steer-bench results.json, best harmonic mean first: each score's
    mean [95 % CI] on the report half; the family's best variant by selection marked."""
    rows = sorted(results["rows"].items(),
                  key=lambda kv: -(kv[1]["summary"]["harmonic"]["mean"] or 0.0))
    out = []
    for key, row in rows:
        s = row["summary"]
        sp = s["harmonic"]["topic_spread"]
        mark = " (best by selection)" if key in results["best"].values() else ""
        out.append([f"{key}{mark}", _est(s["harmonic"]), _est(s["concept"]),
                    _est(s["fluency"]), _est(s["relevance"]), _est(s["ppl"], log=True),
                    " / ".join(_num(sp[k]) for k in ("min", "median", "max"))])
    return LEADERBOARD, out


def _num(x: float | None) -> str:
    from cocomix_lens.steering.stats import format_number

    return format_number(x, decimals=3)


def _est(s: dict[str, Any], log: bool = False) -> str:
    from cocomix_lens.steering.stats import Estimate

    return Estimate.from_dict(s).format(log, decimals=3)
