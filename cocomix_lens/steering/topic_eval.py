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
Every prompt is generated `n_samples` times by the steering harness (`evaluate.Harness`, the
one sampler and scorer of steer-eval, the app and this benchmark) with `batch_prompts`: the
prompts of one token length share batches through the KV cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cocomix_lens.sampling import Sampling
from cocomix_lens.steering.evaluate import Evaluation, Harness
from cocomix_lens.steering.topic_methods import TextPrompt, TopicMethod

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


@dataclass
class MethodScores:
    """Per-continuation scores of one method on one topic's prompts."""

    method: TopicMethod
    prompts: list[str]  # the openings (as given, before any prompting cue)
    n_samples: int
    values: dict[str, np.ndarray]  # score -> [n_samples * n_prompts]: row i, prompt i % n
    examples: list[str]
    harmonic_of: tuple[str, ...] = HARMONIC_OF  # the scores the harmonic mean is taken of

    @property
    def harmonic(self) -> np.ndarray:
        return harmonic([self.values[s] for s in self.harmonic_of])

    def per_prompt(self, name: str) -> np.ndarray:
        """[n_prompts] mean of score `name` (or "harmonic") over each prompt's samples."""
        v = self.harmonic if name == "harmonic" else self.values[name]
        return np.asarray(v, dtype=np.float64).reshape(self.n_samples, len(self.prompts)).mean(0)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method.to_dict(), "prompts": self.prompts,
                "n_samples": self.n_samples,
                "values": {k: [round(float(x), 6) for x in v] for k, v in self.values.items()},
                "examples": self.examples,
                **({} if self.harmonic_of == HARMONIC_OF else
                   {"harmonic_of": list(self.harmonic_of)})}

    @classmethod
    def from_dict(cls, blob: dict[str, Any]) -> MethodScores:
        return cls(TopicMethod.from_dict(blob["method"]), list(blob["prompts"]),
                   int(blob["n_samples"]),
                   {k: np.asarray(v, dtype=np.float64) for k, v in blob["values"].items()},
                   list(blob.get("examples", [])),
                   tuple(blob.get("harmonic_of", HARMONIC_OF)))

    def with_values(self, values: dict[str, np.ndarray],
                    harmonic_of: tuple[str, ...]) -> MethodScores:
        """These continuations with other scores (e.g. derived from the raw ones)."""
        return MethodScores(self.method, self.prompts, self.n_samples, values, self.examples,
                            harmonic_of)


def evaluate_method(run: Any, method: TopicMethod, openings: Sequence[TextPrompt],
                    sampling: Sampling, n_samples: int = 4, n_examples: int = 3,
                    batch_size: int = 64, scores: dict[str, str] | None = None,
                    concept: int | None = None) -> MethodScores:
    """Generate `n_samples` continuations per opening with `method` through the steering
    harness and score them with no edit active (the first sample of the first `n_examples`
    openings kept as examples). `scores`: score name -> registered scorer (default `SCORES`,
    the world oracle's), read for `concept` (the model-based scorers' target latent)."""
    scores = SCORES if scores is None else scores
    prompts = [method.prompt(o) for o in openings]
    evaluation = Evaluation(n_samples=len(prompts) * n_samples, batch_size=batch_size,
                            scorers=tuple(scores.values()), extras={"topic": method.topic},
                            batch_prompts=True)
    harness = Harness(run, prompts, sampling, evaluation)
    gens, raw = harness.condition(method.method(), concept, method.model)
    values = {name: raw[scorer] for name, scorer in scores.items()}
    return MethodScores(method, [o.text for o in openings], n_samples, values,
                        gens.texts[:n_examples])


def summarise(scores: Sequence[MethodScores], n_boot: int = 2000, seed: int = 0,
              level: float = 0.95) -> dict[str, Any]:
    """One method over topics: per score (and "harmonic") the mean over every prompt of every
    topic with a bootstrap CI resampling prompts, the per-topic means and their spread, and
    the spread over prompts."""
    from cocomix_lens.steering.stats import bootstrap

    out: dict[str, Any] = {"topics": [s.method.topic for s in scores],
                           "n_prompts": sum(len(s.prompts) for s in scores)}
    for name in (*scores[0].values, "harmonic"):
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
COLUMNS = (("concept", False), ("fluency", False), ("relevance", False), ("ppl", True))
"""The scores of `LEADERBOARD`'s columns between the harmonic mean and the spread, and
whether each is a log (shown as exp of its mean)."""


def leaderboard(results: dict[str, Any], header: tuple[str, ...] = LEADERBOARD,
                columns: tuple[tuple[str, bool], ...] = COLUMNS,
                ) -> tuple[tuple[str, ...], list[list[str]]]:
    """(header, rows) of a steer-bench results.json, best harmonic mean first: each score's
    mean [95 % CI] on the report half; the family's best variant by selection marked."""
    rows = sorted(results["rows"].items(),
                  key=lambda kv: -(kv[1]["summary"]["harmonic"]["mean"] or 0.0))
    out = []
    for key, row in rows:
        s = row["summary"]
        sp = s["harmonic"]["topic_spread"]
        mark = " (best by selection)" if key in results["best"].values() else ""
        out.append([f"{key}{mark}", _est(s["harmonic"]),
                    *(_est(s[name], log) for name, log in columns),
                    " / ".join(_num(sp[k]) for k in ("min", "median", "max"))])
    return header, out


def _num(x: float | None) -> str:
    from cocomix_lens.steering.stats import format_number

    return format_number(x, decimals=3)


def _est(s: dict[str, Any], log: bool = False) -> str:
    from cocomix_lens.steering.stats import Estimate

    return Estimate.from_dict(s).format(log, decimals=3)
