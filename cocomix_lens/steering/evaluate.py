"""Measured steering: generate with a steering method, score the text with every edit off.

    result = evaluate_steering(run, SteeringSpec().add(12, 6), prompts, Sampling(seed=0))
    result.table()                             # metric, steered, unsteered, control, CIs
    curve = sweep(run, 12, "add", [2, 4, 8], prompts, Sampling(), Evaluation(n_samples=64))

The harness. A steering method (`method.Method`) is anything that edits a generation: a
SteeringSpec, a d_model direction added at a hook (classic SAE steering, DiffMean), a prompt
transformation. `Harness(run, prompts, sampling, evaluation)` generates every method with the
same prompts (the one prompt encoder, `data.tokenizer.prompt_ids`), the same `Sampling` and
the same per-(prompt, batch) seeds, so conditions pair sample by sample; it scores the
continuation only with the same scorers (`scorers.SCORERS`: the teacher, its SAE, the
unsteered student, the NTP student and any registered plugin such as the world's oracle),
none of them inside a steering context. `Harness.arm(method, control)` gives one
`ArmResult`: steered, unsteered and control conditions with bootstrap CIs, per-prompt
figures and example texts. `evaluate_steering`, `sweep`, `steer-eval`, the screen, the app's
Steer page and the steer-bench all go through it.

Two arms by default: "cocomix" (the student with the spec, without, and with the same edit on
a random live concept) and "sae" (the teacher with `strength` x mean residual norm x the SAE
latent's unit decoder direction, without, and with a random latent's direction).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cocomix_lens.data.tokenizer import eos_id, prompt_ids
from cocomix_lens.progress import Progress, no_progress
from cocomix_lens.sampling import Sampling
from cocomix_lens.steering.method import Method, sae_method, spec_method
from cocomix_lens.steering.results import (
    CONDITIONS,
    ArmResult,
    MetricInfo,
    SteeringEvaluation,
    SweepResult,
)
from cocomix_lens.steering.scorers import Generations, Readings, Scorer, scorers_for
from cocomix_lens.steering.spec import SteeringSpec, op_edit

ARMS = {"cocomix": "student", "sae": "teacher"}  # arm -> the run's model that generates
N_EXAMPLES = 3  # generated texts kept per condition in the result


@dataclass(frozen=True)
class Evaluation:
    """How many samples an evaluation draws and how it summarises them."""

    n_samples: int = 32
    """Generations per condition; sample i continues prompt i % len(prompts)."""
    batch_size: int = 32
    """Sequences generated and scored together."""
    n_boot: int = 2000
    """Bootstrap resamples of each confidence interval."""
    level: float = 0.95
    """Confidence level of the intervals."""
    scorers: tuple[str, ...] | None = None
    """Metrics to compute (scorers.SCORERS names); None: every one that applies to the run."""
    control: int | None = None
    """The control concept; None: a random live concept, seeded by the sampling seed."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Passed to every scorer, e.g. {"topic": "farming"} for the world oracle."""
    batch_prompts: bool = False
    """Generate every prompt of one token length in the same batches (fewer, larger batches
    through the KV cache: the steering benchmark's setting); False: each prompt on its own
    (what steer-eval's committed figures were drawn with). Same distribution, other draws."""

    def __post_init__(self) -> None:
        if self.n_samples < 1 or self.batch_size < 1:
            raise ValueError(f"n_samples={self.n_samples}, batch_size={self.batch_size}: "
                             "both must be >= 1")
        if not 0 < self.level < 1:
            raise ValueError(f"level={self.level} must be in (0, 1), e.g. 0.95")


def encode_prompts(tokenizer: Any, prompts: Sequence[str]) -> list[Tensor]:
    """Each prompt as [pos] ids (`prompt_ids`: after <|endoftext|>, as every document)."""
    if not prompts:
        raise ValueError("no prompts given; pass at least one prompt text")
    return [torch.tensor(prompt_ids(tokenizer, p), dtype=torch.long) for p in prompts]


def generate_samples(model: nn.Module, tokenizer: Any, prompts: list[Tensor],
                     sampling: Sampling, evaluation: Evaluation = Evaluation(),
                     method: Method | None = None) -> Generations:
    """evaluation.n_samples continuations (stopping at <|endoftext|>) of the prompts ([pos]
    ids, already through `method.prompt`); sample i continues prompt i % len(prompts). Prompts
    are generated in groups (`prompt_groups`: each alone, or all of one token length with
    `evaluation.batch_prompts`; the model has no padding mask), a group's samples in batches of
    `evaluation.batch_size` seeded by (seed, the group's first prompt, batch offset) only, so a
    one-prompt group draws what it always drew. Each batch runs in a fresh `method.context`
    (a spec's "prompt" positions are that batch's prompt)."""
    eos = eos_id(tokenizer)
    rows: list[tuple[int, Tensor, int]] = []  # (sample index, prompt + generated, prompt len)
    for group in prompt_groups(prompts, evaluation.batch_prompts):
        idx = [i for j in group for i in range(j, evaluation.n_samples, len(prompts))]
        n = len(prompts[group[0]])
        for b in range(0, len(idx), evaluation.batch_size):
            chunk = idx[b:b + evaluation.batch_size]
            seed = sampling.seed * 1_000_003 + group[0] * 1_009 + b
            batch = torch.stack([prompts[i % len(prompts)] for i in chunk])
            with method.context(model, n) if method else nullcontext():
                out = model.generate(batch, **{**sampling.kwargs(), "seed": seed},
                                     stop_tokens=[eos])
            rows += [(i, out[r].cpu(), n) for r, i in enumerate(chunk)]
    rows.sort(key=lambda r: r[0])
    return _pack(rows, eos, tokenizer)


def prompt_groups(prompts: Sequence[Tensor], by_length: bool) -> list[list[int]]:
    """Indices of the prompts generated together: each prompt alone, or (`by_length`) every
    prompt of one token length, in order of first appearance."""
    if not by_length:
        return [[j] for j in range(len(prompts))]
    groups: dict[int, list[int]] = {}
    for j, p in enumerate(prompts):
        groups.setdefault(len(p), []).append(j)
    return list(groups.values())


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




class Harness:
    """Generates and scores steering methods on one run, prompts, sampling and evaluation
    (module docstring). What does not depend on the concept scored is generated once and
    scored once per concept: the unsteered condition of each model, and each Method object
    (so a screen that passes one control Method for many concepts draws it once)."""

    def __init__(self, run: Any, prompts: Sequence[str], sampling: Sampling = Sampling(),
                 evaluation: Evaluation = Evaluation(), progress: Progress = no_progress):
        if not prompts:
            raise ValueError("no prompts given; pass at least one prompt text")
        self.run, self.prompts = run, list(prompts)
        self.sampling, self.evaluation, self.progress = sampling, evaluation, progress
        self.scorers = scorers_for(run, None if evaluation.scorers is None
                                   else list(evaluation.scorers))
        # model or id(Method) -> (the Method, kept so its id stays unique; its samples)
        self._drawn: dict[str | int, tuple[Method | None, Generations]] = {}
        self._scores: dict[tuple[str | int, int | None], dict[str, np.ndarray]] = {}

    def _check_width(self, ids: list[Tensor], model: str) -> None:
        new = self.sampling.max_new_tokens
        width = max(len(p) for p in ids) + new
        for role in {model, "student"}:
            n_ctx = getattr(self.run, role).cfg.n_ctx
            if width > n_ctx:
                raise ValueError(f"the longest prompt plus max_new_tokens={new} is {width} "
                                 f"tokens, over the {role}'s n_ctx={n_ctx}; shorten the "
                                 "prompts or lower max_new_tokens")

    def generate(self, method: Method | None, model: str = "student") -> Generations:
        """The samples of `method` (None: unsteered `model`)."""
        model = method.model if method is not None else model
        texts = [method.prompt_text(p) if method else p for p in self.prompts]
        ids = encode_prompts(self.run.tokenizer, texts)
        self._check_width(ids, model)
        return generate_samples(getattr(self.run, model), self.run.tokenizer, ids,
                                self.sampling, self.evaluation, method)

    def condition(self, method: Method | None, concept: int | None,
                  model: str = "student") -> tuple[Generations, dict[str, np.ndarray]]:
        """(samples, metric -> per-sample values) of `method` scored for `concept`."""
        key = model if method is None else id(method)
        if key not in self._drawn:
            self._drawn[key] = (method, self.generate(method, model))
        gens = self._drawn[key][1]
        if (key, concept) not in self._scores:
            self._scores[key, concept] = score(self.run, concept, gens, self.scorers,
                                               self.evaluation.batch_size,
                                               self.evaluation.extras)
        return gens, self._scores[key, concept]

    def arm(self, method: Method, control: Method | None = None, arm: str = "cocomix",
            concept: int | None = None) -> ArmResult:
        """`method` beside its model's unsteered run and `control` (default: the method
        retargeted at `evaluation.control` or a seeded random live concept), scored for
        `concept` (default: the method's)."""
        concept = method.concept if concept is None else concept
        control = self._control(method, concept) if control is None else control
        conds = {"steered": method, "unsteered": None, "control": control}
        values, examples = {}, {}
        for name in self.progress(CONDITIONS, len(CONDITIONS), f"{arm} conditions"):
            gens, vals = self.condition(conds[name], concept, method.model)
            values[name] = {k: v.tolist() for k, v in vals.items()}
            examples[name] = gens.texts[:N_EXAMPLES]
        ev = self.evaluation
        metrics = [MetricInfo(s.name, s.kind, s.doc, s.log_scale) for s in self.scorers]
        return ArmResult(arm, method.description, concept, control.concept,
                         method.strength, metrics, values, examples, ev.n_boot,
                         self.sampling.seed, ev.level, prompts=self.prompts,
                         method=method.to_dict(), control=control.to_dict())

    def _control(self, method: Method, concept: int | None) -> Method:
        if method.retarget is None or concept is None:
            raise ValueError(f"{method.description!r} cannot be aimed at another concept; "
                             "fix: pass control= (e.g. a random direction of the same norm)")
        return method.retarget(pick_control(self.run, concept, self.evaluation.control,
                                            self.sampling.seed))

    def settings(self) -> dict[str, Any]:
        """JSON-ready: prompts, sampling and evaluation, so a result re-runs from its file."""
        ev = asdict(self.evaluation)
        ev["scorers"] = [s.name for s in self.scorers]
        return {"prompts": self.prompts, "sampling": self.sampling.kwargs(), "evaluation": ev}


def as_method(run: Any, spec: SteeringSpec | Method) -> Method:
    """`spec` as a Method (a SteeringSpec is resolved against the run's catalogue)."""
    return spec if isinstance(spec, Method) else spec_method(run, spec)


def evaluate_steering(run: Any, spec: SteeringSpec | Method,
                      prompts: Sequence[str] | None = None, sampling: Sampling = Sampling(),
                      evaluation: Evaluation = Evaluation(), *,
                      sae_strength: float | None = 1.0,
                      progress: Progress = no_progress) -> SteeringEvaluation:
    """Generate with `spec` and score the continuations with steering off, beside the
    unsteered run and a random-concept control of the same strength (bootstrap CIs).

    With a CoCoMix `spec` and `sae_strength` set, the teacher is also steered along the same
    SAE latent (`sae_method`) and compared the same way (arm "sae")."""
    prompts = list(prompts) if prompts else default_prompts(run)
    harness = Harness(run, prompts, sampling, evaluation, progress)
    method = as_method(run, spec)
    if method.concept is None:
        raise ValueError(f"{method.description!r} names no concept to score; fix: put an edit "
                         "on a concept first, or pass a Method with a concept to Harness.arm "
                         "with an explicit control")
    check_concept(run, method.concept)
    arms = {"cocomix" if method.model == "student" else "sae": method}
    if method.model == "student" and sae_strength is not None:
        arms["sae"] = sae_method(run, method.concept, sae_strength, prompts)
    results = {name: harness.arm(m, arm=name) for name, m in arms.items()}
    return SteeringEvaluation(results, {**harness.settings(), "sae_strength": sae_strength})


def op_method(run: Any, op: str, concept: int, strength: float) -> Method:
    """One spec edit `op` on `concept` at `strength` as a Method (what a cocomix sweep runs)."""
    return spec_method(run, SteeringSpec((op_edit(op, concept, strength),)))


def sweep(run: Any, concept: int, op: str, strengths: Sequence[float],
          prompts: Sequence[str] | None = None, sampling: Sampling = Sampling(),
          evaluation: Evaluation = Evaluation(), *, arm: str = "cocomix",
          make: Callable[[int, float], Method] | None = None,
          progress: Progress = no_progress, harness: Harness | None = None) -> SweepResult:
    """Dose-response: one `Harness.arm` per strength, sharing the unsteered run and the
    control concept. arm "cocomix" applies the spec edit `op` with value = strength (catalogue
    stds resolved); arm "sae" adds the SAE direction (`sae_method`, op ignored); `make`
    (concept, strength) -> Method overrides both. `harness`: generate through this one (its
    prompts, sampling and evaluation replace the arguments), so sweeps of several concepts
    share its unsteered samples."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; choose one of {sorted(ARMS)}")
    if not strengths:
        raise ValueError("sweep needs at least one strength, e.g. strengths=[2, 4, 8]")
    if harness is not None:
        prompts, sampling, evaluation = harness.prompts, harness.sampling, harness.evaluation
    prompts = list(prompts) if prompts else default_prompts(run)
    if make is None:
        make = ((lambda c, s: op_method(run, op, c, s))
                if arm == "cocomix" else (lambda c, s: sae_method(run, c, s, prompts)))
    check_concept(run, concept)
    control = pick_control(run, concept, evaluation.control, sampling.seed)
    harness = harness or Harness(run, prompts, sampling, evaluation)
    results = []
    for s in progress(list(strengths), len(strengths), f"{arm} sweep"):
        method = make(concept, float(s))
        results.append(harness.arm(method, make(control, float(s)), arm, concept))
    return SweepResult(concept, op, arm, [float(s) for s in strengths], results,
                       harness.settings())
