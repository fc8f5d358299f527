"""Measured steering: generate with an edit, then score the text with every edit switched off.

    result = evaluate_steering(run, SteeringSpec().scale(12, 8), prompts, n_samples=64)
    result.table()                             # str: metric, steered, unsteered, control, CIs
    curve = sweep(run, concept=12, op="scale", strengths=[2, 4, 8])

Two arms, each with three conditions sharing prompts and seeds (so samples are paired):
- "cocomix": the CoCoMix student generates with the concept edit / without / with the same edit
  on a random live concept (the control, seeded);
- "sae": the teacher generates with `strength` x (mean residual norm) x the SAE latent's unit
  decoder direction added at the SAE's hook (classic SAE steering), without, and with a random
  latent's direction.
Scores (`scorers.SCORERS`) read the generated tokens with the teacher, its SAE, the unsteered
student and the NTP student; none of them runs inside a steering context.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cocomix_lens.concepts.extractor import decoder_directions
from cocomix_lens.data.tokenizer import eos_id
from cocomix_lens.progress import Progress, no_progress
from cocomix_lens.steering import world_scorers  # noqa: F401  (registers the oracle scorers)
from cocomix_lens.steering.hooks import steer
from cocomix_lens.steering.results import (
    CONDITIONS,
    ArmResult,
    MetricInfo,
    SteeringEvaluation,
    SweepResult,
)
from cocomix_lens.steering.scorers import Generations, Readings, Scorer, scorers_for
from cocomix_lens.steering.spec import Edit, SteeringSpec

ARMS = {"cocomix": "student", "sae": "teacher"}  # arm -> the run's model that generates
N_EXAMPLES = 3  # generated texts kept per condition in the result


@dataclass(frozen=True)
class Steerer:
    """An edit of one of the run's models that can be aimed at any concept.

    `apply(model, concept)` returns a context manager inside which `model` is steered towards
    `concept`; `retarget` aims the same edit (same operation and strength) elsewhere, which is
    how the random-concept control is made.
    """

    concept: int
    apply: Callable[[nn.Module, int], AbstractContextManager]
    arm: str = "cocomix"  # which model it edits: "cocomix" (student) or "sae" (teacher)
    description: str = ""
    strength: float = float("nan")

    def retarget(self, concept: int) -> Steerer:
        return replace(self, concept=concept,
                       description=self.description.replace(str(self.concept), str(concept)))

    def context(self, model: nn.Module) -> AbstractContextManager:
        return self.apply(model, self.concept)


def spec_steerer(spec: SteeringSpec) -> Steerer:
    """A SteeringSpec as a Steerer: the evaluated concept is its first edit's (`set`: first
    listed) concept; retargeting replaces that id in every edit (explicit `vector`s stay)."""
    if not spec.edits:
        raise ValueError("the steering spec has no edits; fix: add one, e.g. "
                         '{"edits": [{"op": "scale", "concept": 12, "value": 4}]}')
    first = spec.edits[0]
    if first.concept is None and not first.concepts:
        raise ValueError(f"the spec's first edit ({first.op} of a given vector) names no "
                         "concept to score; fix: put an edit on a concept first")
    concept = first.concept if first.concept is not None else first.concepts[0]

    def apply(model: nn.Module, c: int) -> AbstractContextManager:
        return steer(model, _retarget(spec, concept, c))

    value = first.value if first.value is not None else float("nan")
    return Steerer(concept, apply, "cocomix", _describe(spec), float(value))


def _retarget(spec: SteeringSpec, old: int, new: int) -> SteeringSpec:
    def move(e: Edit) -> Edit:
        concepts = None if e.concepts is None else tuple(new if c == old else c
                                                         for c in e.concepts)
        return replace(e, concept=new if e.concept == old else e.concept, concepts=concepts)
    return replace(spec, edits=tuple(move(e) for e in spec.edits))


def _describe(spec: SteeringSpec) -> str:
    parts = []
    for e in spec.edits:
        what = f"concept {e.concept}" if e.concepts is None else f"concepts {list(e.concepts)}"
        how = "" if e.value is None else f" by {e.value:g}" + (" std" if e.op == "add" else "")
        where = "" if e.positions == "all" else f" at {e.positions} positions"
        parts.append(f"{e.op} {what}{how}{where}")
    return "; ".join(parts)


def as_steerer(run: Any, spec: SteeringSpec | Steerer) -> Steerer:
    """`spec` as a Steerer; `add` edits without a std take the run catalogue's logit std."""
    if isinstance(spec, Steerer):
        return spec
    if not isinstance(spec, SteeringSpec):
        raise ValueError(f"expected a SteeringSpec or a Steerer, got {type(spec).__name__}; "
                         "fix: SteeringSpec.load('spec.json')")
    return spec_steerer(spec.with_catalogue_stds(run))


def sae_steerer(run: Any, concept: int, strength: float, prompts: Sequence[str]) -> Steerer:
    """Classic SAE steering of the teacher: add strength x (mean residual norm at the SAE hook
    over `prompts`) x latent `concept`'s unit decoder direction at every position."""
    _check_strength(strength)
    sae = run.sae
    hook_name = sae.cfg.metadata.hook_name
    unit = decoder_directions(sae)
    unit = unit / unit.norm(dim=-1, keepdim=True)
    size = strength * _resid_norm(run.teacher, hook_name, encode_prompts(run.tokenizer, prompts))

    def apply(model: nn.Module, c: int) -> AbstractContextManager:
        direction = (size * unit[c]).to(model.device)

        def hook(x: Tensor, hook: Any) -> Tensor:
            return x + direction
        return model.hooks(fwd_hooks=[(hook_name, hook)])

    return Steerer(concept, apply, "sae",
                   f"add {strength:g} x residual norm along SAE latent {concept}",
                   float(strength))


def _check_strength(strength: float) -> None:
    if not np.isfinite(strength):
        raise ValueError(f"steering strength {strength} must be a finite number")


@torch.no_grad()
def _resid_norm(teacher: nn.Module, hook_name: str, prompts: list[Tensor]) -> float:
    _, cache = teacher.run_with_cache(torch.cat(prompts)[None], names_filter=hook_name)
    return float(cache[hook_name].norm(dim=-1).mean())


def encode_prompts(tokenizer: Any, prompts: Sequence[str]) -> list[Tensor]:
    """Each prompt as [pos] ids, after <|endoftext|> as every training document is."""
    if not prompts:
        raise ValueError("no prompts given; pass at least one prompt text")
    eos = eos_id(tokenizer)
    return [torch.tensor([eos] + tokenizer.encode(p).ids, dtype=torch.long) for p in prompts]


@dataclass(frozen=True)
class Sampling:
    """How every condition generates (identical across conditions, so samples pair up)."""

    n_samples: int = 32  # per condition; sample i continues prompt i % len(prompts)
    seed: int = 0
    max_new_tokens: int = 48
    temperature: float = 1.0
    top_p: float | None = 0.95
    batch_size: int = 32  # sequences generated and scored together


def generate_samples(model: nn.Module, tokenizer: Any, prompts: list[Tensor],
                     sampling: Sampling,
                     steering: Callable[[], AbstractContextManager] | None = None
                     ) -> Generations:
    """n_samples continuations (stopping at <|endoftext|>) of the prompts, grouped by prompt
    and generated in batches with seeds that depend only on (seed, prompt, batch).
    `steering()` makes the context each batch is generated in (fresh per call: a spec's
    "prompt" positions are that batch's prompt)."""
    eos = eos_id(tokenizer)
    rows: list[tuple[int, Tensor, int]] = []  # (sample index, prompt + generated, prompt len)
    for j, prompt in enumerate(prompts):
        idx = list(range(j, sampling.n_samples, len(prompts)))
        for b in range(0, len(idx), sampling.batch_size):
            chunk = idx[b:b + sampling.batch_size]
            with steering() if steering else nullcontext():
                out = model.generate(
                    prompt.expand(len(chunk), -1), sampling.max_new_tokens,
                    temperature=sampling.temperature, top_p=sampling.top_p,
                    stop_tokens=[eos], seed=sampling.seed * 1_000_003 + j * 1_009 + b)
            rows += [(i, out[r].cpu(), len(prompt)) for r, i in enumerate(chunk)]
    rows.sort(key=lambda r: r[0])
    return _pack(rows, eos, tokenizer)


def _pack(rows: list[tuple[int, Tensor, int]], eos: int, tokenizer: Any) -> Generations:
    width = max(len(t) for _, t, _ in rows)
    tokens = torch.full((len(rows), width), eos, dtype=torch.long)
    prompt_lens, gen_lens, texts = [], [], []
    for r, (_, seq, p) in enumerate(rows):
        tokens[r, :len(seq)] = seq
        gen = seq[p:]
        stop = (gen == eos).nonzero()
        n = int(stop[0]) if len(stop) else len(gen)
        prompt_lens.append(p)
        gen_lens.append(n)
        texts.append(tokenizer.decode(gen[:n].tolist()))
    return Generations(tokens, torch.tensor(prompt_lens), torch.tensor(gen_lens), texts)


def score(run: Any, concept: int, gens: Generations, scorers: list[Scorer],
          batch_size: int = 32, extras: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """metric -> [n] per-sample values of `gens` for `concept`, read with no steering."""
    out: dict[str, list[np.ndarray]] = {s.name: [] for s in scorers}
    for b in range(0, len(gens), batch_size):
        readings = Readings(run, concept, gens.select(slice(b, b + batch_size)),
                            dict(extras or {}))
        for s in scorers:
            out[s.name].append(np.asarray(s.fn(readings), dtype=np.float64))
    return {name: np.concatenate(v) for name, v in out.items()}


def check_concept(run: Any, concept: int) -> None:
    """One-line error unless `concept` is a latent of the run's SAE (= a student concept)."""
    n = int(run.sae.cfg.d_sae)
    if not 0 <= concept < n:
        raise ValueError(f"concept {concept} does not exist: the run's concepts are 0..{n - 1}")


def live_concepts(run: Any) -> np.ndarray:
    """Concept ids that are not dead: the catalogue's `dead` flag when the run has one, else
    those the teacher's attribution labels use at least once (train split)."""
    if run.has("catalogue"):
        concepts = run.catalogue.concepts
        return concepts.index[~concepts["dead"].to_numpy(bool)].to_numpy()
    labels = run.labels
    split = "train" if "train" in labels.splits else labels.splits[0]
    return np.unique(np.asarray(labels.array(split, "ids")))


def random_control(run: Any, concept: int, seed: int) -> int:
    """A seeded random live concept other than `concept` (the control of the same edit)."""
    live = live_concepts(run)
    live = live[live != concept]
    if live.size == 0:
        raise ValueError("no live concept other than the steered one to use as control; "
                         "pass control=<concept id>")
    return int(np.random.default_rng(seed).choice(live))


def pick_control(run: Any, concept: int, control: int | None, seed: int) -> int:
    """`control`, checked (a concept of the run, not the steered one), or a random one."""
    if control is None:
        return random_control(run, concept, seed)
    if control == concept:
        raise ValueError(f"control={control} is the steered concept itself, so steered and "
                         "control would be the same edit; fix: pick another concept or leave "
                         "control out (a random live one)")
    check_concept(run, control)
    return control


def default_prompts(run: Any, n: int = 8, n_tokens: int = 4, max_sentence: int = 16) -> list[str]:
    """Openings of the first `n` validation documents: the first sentence when it ends within
    `max_sentence` tokens (so continuations start at a sentence boundary), else the first
    `n_tokens` tokens."""
    shards = run.shards
    split = "val" if "val" in shards.manifest.get("splits", {}) else "train"
    ids = shards.split(split)
    out = []
    for d in shards.documents(split)[:n]:
        head = shards.decode(ids[d["start"]:min(d["start"] + max_sentence, d["end"])])
        cut = _SENTENCE_END.search(head)
        out.append(head[:cut.end()] if cut else
                   shards.decode(ids[d["start"]:min(d["start"] + n_tokens, d["end"])]))
    return out


_SENTENCE_END = re.compile(r"[.!?](?=\s)")


class _Bench:
    """Generates and scores conditions for one run, prompts and sampling; the unsteered run of
    each arm is generated and scored once per concept and reused (a sweep shares it)."""

    def __init__(self, run: Any, prompts: Sequence[str], sampling: Sampling,
                 scorers: list[Scorer], progress: Progress, extras: dict[str, Any]):
        self.run, self.sampling, self.scorers = run, sampling, scorers
        self.prompt_ids = encode_prompts(run.tokenizer, prompts)
        self.progress, self.extras = progress, extras
        self._unsteered: dict[tuple[str, int], tuple[Generations, dict[str, np.ndarray]]] = {}
        self._check_width(max(len(p) for p in self.prompt_ids) + sampling.max_new_tokens)

    def _check_width(self, width: int) -> None:
        new = self.sampling.max_new_tokens
        for role in ("student", "teacher"):
            n_ctx = getattr(self.run, role).cfg.n_ctx
            if width > n_ctx:
                raise ValueError(f"the longest prompt plus max_new_tokens={new} is {width} "
                                 f"tokens, over the {role}'s n_ctx={n_ctx}; shorten the "
                                 "prompts or lower max_new_tokens")

    def condition(self, arm: str, steerer: Steerer | None,
                  concept: int) -> tuple[Generations, dict[str, np.ndarray]]:
        key = (arm, concept)
        if steerer is None and key in self._unsteered:
            return self._unsteered[key]
        model = getattr(self.run, ARMS[arm])
        ctx = None if steerer is None else (lambda: steerer.context(model))
        gens = generate_samples(model, self.run.tokenizer, self.prompt_ids, self.sampling, ctx)
        values = score(self.run, concept, gens, self.scorers, self.sampling.batch_size,
                       self.extras)
        if steerer is None:
            self._unsteered[key] = (gens, values)
        return gens, values

    def arm(self, steerer: Steerer, control: int, n_boot: int, level: float) -> ArmResult:
        conds = {"steered": steerer, "unsteered": None, "control": steerer.retarget(control)}
        values, examples = {}, {}
        for name in self.progress(CONDITIONS, len(CONDITIONS), f"{steerer.arm} conditions"):
            gens, vals = self.condition(steerer.arm, conds[name], steerer.concept)
            values[name] = {k: v.tolist() for k, v in vals.items()}
            examples[name] = gens.texts[:N_EXAMPLES]
        metrics = [MetricInfo(s.name, s.kind, s.doc, s.log_scale) for s in self.scorers]
        return ArmResult(steerer.arm, steerer.description, steerer.concept, control,
                         steerer.strength, metrics, values, examples, n_boot,
                         self.sampling.seed, level)


def evaluate_steering(run: Any, spec: SteeringSpec | Steerer, prompts: Sequence[str] | None = None,
                      n_samples: int = 32, seed: int = 0, max_new_tokens: int = 48, *,
                      sae_strength: float | None = 1.0, control: int | None = None,
                      scorers: list[str] | None = None, temperature: float = 1.0,
                      top_p: float | None = 0.95, batch_size: int = 32, n_boot: int = 2000,
                      level: float = 0.95, progress: Progress = no_progress,
                      extras: dict[str, Any] | None = None) -> SteeringEvaluation:
    """Generate with `spec` and score the generated text with steering off, beside the
    unsteered run and a random-concept control of the same strength (bootstrap CIs).

    With a CoCoMix `spec` and `sae_strength` set, the teacher is also steered along the same
    SAE latent (`sae_steerer`) and compared the same way (arm "sae"). `control` fixes the
    control concept (default: a seeded random live concept). `scorers` names metrics from
    `scorers.SCORERS` (default: every one that applies to the run). `extras` is passed to
    every scorer (e.g. the topic an oracle scorer checks).
    """
    prompts = list(prompts) if prompts else default_prompts(run)
    sampling = Sampling(n_samples, seed, max_new_tokens, temperature, top_p, batch_size)
    bench = _Bench(run, prompts, sampling, scorers_for(run, scorers), progress, extras or {})
    spec = as_steerer(run, spec)
    check_concept(run, spec.concept)
    control = pick_control(run, spec.concept, control, seed)
    steerers = [spec]
    if spec.arm == "cocomix" and sae_strength is not None:
        steerers.append(sae_steerer(run, spec.concept, sae_strength, prompts))
    arms = {s.arm: bench.arm(s, control, n_boot, level) for s in steerers}
    settings = {"prompts": prompts, **sampling.__dict__, "n_boot": n_boot, "level": level,
                "sae_strength": sae_strength}
    return SteeringEvaluation(arms, settings)


def sweep(run: Any, concept: int, op: str, strengths: Sequence[float],
          prompts: Sequence[str] | None = None, n_samples: int = 32, seed: int = 0,
          max_new_tokens: int = 48, *, arm: str = "cocomix", control: int | None = None,
          scorers: list[str] | None = None, temperature: float = 1.0,
          top_p: float | None = 0.95, batch_size: int = 32, n_boot: int = 2000,
          level: float = 0.95, progress: Progress = no_progress,
          extras: dict[str, Any] | None = None,
          make: Callable[[int, float], Steerer] | None = None) -> SweepResult:
    """Dose-response: `evaluate_steering` of one arm at each strength, sharing the unsteered
    run and the control concept. arm "cocomix" applies the spec edit `op` (scale, add, vector)
    with value = strength; arm "sae" adds the SAE direction (`sae_steerer`, op ignored); `make`
    (concept, strength) -> Steerer overrides both."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; choose one of {sorted(ARMS)}")
    if not strengths:
        raise ValueError("sweep needs at least one strength, e.g. strengths=[2, 4, 8]")
    prompts = list(prompts) if prompts else default_prompts(run)
    if make is None:
        make = ((lambda c, s: as_steerer(run, SteeringSpec((Edit(op, c, s),)))) if arm == "cocomix"
                else (lambda c, s: sae_steerer(run, c, s, prompts)))
    sampling = Sampling(n_samples, seed, max_new_tokens, temperature, top_p, batch_size)
    bench = _Bench(run, prompts, sampling, scorers_for(run, scorers), no_progress,
                   extras or {})
    check_concept(run, concept)
    control = pick_control(run, concept, control, seed)
    results = [bench.arm(make(concept, float(s)), control, n_boot, level)
               for s in progress(list(strengths), len(strengths), f"{arm} sweep")]
    settings = {"prompts": prompts, **sampling.__dict__, "n_boot": n_boot, "level": level}
    return SweepResult(concept, op, arm, [float(s) for s in strengths], results, settings)
