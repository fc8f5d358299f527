"""Which concepts steer? Screen the concepts the student predicts most often, then sweep and
evaluate the densest one that passes (the job behind `cocomix-lens steer-eval --densest`).

    res = steer_densest(run, ScreenSettings(n=30))   # about 4 min on the world demo, 2 cores
    report = res.markdown()                   # the screen, both sweeps and the final table
    res.to_dict()                             # JSON-ready, every estimate and example text

A concept with high prediction density is one the student puts in its top-k at many tokens:
the first a user meets in `inspect`. Many of the densest are generic (they sit in the top-k at
every position) and no edit moves them, so the screen tries each with one `add` edit and keeps
those whose CIs of *both* success measures, read with steering off (the teacher's SAE
activation of the concept on the generated tokens and the unsteered student's probability of
it), lie above the unsteered run's and the random control's (`ArmResult.clear`). The densest
passing concept is then swept (dose-response, CoCoMix `add` and classic SAE steering), each arm
takes the largest strength whose fluency stays within `FluencyBounds`, and both are evaluated
on fresh samples (`final_seed`), so the concept is not scored on the samples that chose it.
Every stage samples with the one `Sampling` (its seed seeds the screen and the sweeps).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

import cocomix_lens.world.steering_scorers  # noqa: F401  (registers the oracle scorers)
from cocomix_lens.progress import Progress, no_progress
from cocomix_lens.sampling import Sampling
from cocomix_lens.steering.evaluate import (
    Evaluation,
    Harness,
    default_prompts,
    evaluate_steering,
    op_method,
    pick_control,
    sweep,
)
from cocomix_lens.steering.method import Method
from cocomix_lens.steering.results import ArmResult, SteeringEvaluation, SweepResult
from cocomix_lens.steering.scorers import SCORERS
from cocomix_lens.steering.spec import SteeringSpec
from cocomix_lens.tables import markdown_table
from cocomix_lens.world.steering_scorers import world_target

SUCCESS = ("sae_act", "student_prob")
"""The two success measures a concept must clear (both read with steering off)."""


@dataclass(frozen=True)
class FluencyBounds:
    """How much fluency a chosen strength may cost, against the unsteered run."""

    max_grammar_drop: float = 0.10
    """World runs: the oracle's grammatical share may fall at most this much."""
    max_ppl_ratio: float = 1.5
    """Other runs: NTP perplexity may grow at most this factor."""


@dataclass(frozen=True)
class ScreenSettings:
    """What `steer_densest` screens, sweeps and evaluates."""

    n: int = 30
    """Concepts to screen: the live ones the student predicts most often."""
    truth: str | None = None
    """Screen only concepts whose ground-truth match (catalogue column `truth`, e.g.
    "topic=sea") is a value of this variable ("topic"); None: every live concept. On the world
    run the densest concepts are tense and pronoun ones, which no add edit moves (`make demo`
    screens topic concepts: docs/steering.md)."""
    strength: float = 6.0
    """The screen's add edit, in catalogue logit stds."""
    screen_samples: int = 48
    """Generations per condition in the screen."""
    add: tuple[float, ...] = (2, 3, 4, 5, 6, 8)
    """The CoCoMix add sweep's strengths (catalogue logit stds)."""
    sae: tuple[float, ...] = (0.3, 0.45, 0.6, 0.75, 0.9)
    """The SAE sweep's strengths (x mean residual norm)."""
    sweep_samples: int = 64
    """Generations per condition in the sweeps."""
    samples: int = 128
    """Generations per condition in the final evaluation."""
    final_seed: int = 1
    """Sampling seed of the final evaluation (fresh samples)."""
    n_boot: int = 1000
    """Bootstrap resamples (the final evaluation uses twice as many)."""
    bounds: FluencyBounds = FluencyBounds()
    """How much fluency a chosen strength may cost."""
    batch_prompts: bool = True
    """Generate the prompts of one token length together (Evaluation.batch_prompts)."""

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n={self.n} concepts to screen; fix: pass n >= 1")


def fluency_metric(run: Any) -> str:
    """The oracle's grammatical share where the run has one (world), else NTP perplexity."""
    return "oracle_grammatical" if SCORERS["oracle_grammatical"].applies(run) else "ppl_ntp"


def within(result: ArmResult, metric: str, bounds: FluencyBounds) -> bool:
    """Whether the steered fluency stays within `bounds` of the unsteered run."""
    s, u = result.estimate(metric).mean, result.estimate(metric, "unsteered").mean
    if metric == "oracle_grammatical":
        return s >= u - bounds.max_grammar_drop
    return s - u <= float(np.log(bounds.max_ppl_ratio))  # perplexities are kept as logs


def pick_strength(result: SweepResult, metric: str, bounds: FluencyBounds) -> float:
    """The largest swept strength within the fluency bounds (the smallest when none is)."""
    ok = [s for s, r in zip(result.strengths, result.results) if within(r, metric, bounds)]
    return max(ok) if ok else min(result.strengths)


def densest_concepts(run: Any, n: int, truth: str | None = None) -> list[tuple[int, float, int]]:
    """(concept, prediction density, rank among live concepts) of the `n` live concepts the
    student predicts most often (catalogue column `prediction_density`), only those whose
    ground-truth match is a value of the variable `truth` when given (`ScreenSettings.truth`)."""
    cat = run.catalogue.concepts
    live = cat[~cat["dead"]].sort_values("prediction_density", ascending=False, kind="stable")
    ranked = [(int(c), float(d), i + 1)
              for i, (c, d) in enumerate(live["prediction_density"].items())]
    if truth is not None:
        variables = sorted({str(t).split("=")[0] for t in live["truth"] if t})
        if truth not in variables:
            fix = (f"a variable among {variables}, or no filter" if variables else
                   "screen without the filter (the run has no ground-truth matches)")
            raise ValueError(f"truth={truth!r}: no live concept's ground-truth match (catalogue "
                             f"column truth) is a value of it; fix: {fix}")
        ranked = [r for r in ranked if str(live.at[r[0], "truth"]).startswith(truth + "=")]
    return ranked[:n]


def oracle_target(run: Any, concept: int) -> str | None:
    """World runs: "topic=NAME" (or "character=NAME") that the concept's top output tokens
    name, for the oracle's share of steered sentences on it; None when they name none."""
    if not SCORERS["oracle_on_target"].applies(run):
        return None
    try:
        kind, name = world_target(run, concept, {})
    except ValueError:
        return None
    return f"{kind}={name}"


@dataclass
class DenseSteering:
    """The screen, and for the densest passing concept its sweeps and final evaluation."""

    live: int
    median_density: float
    screen: list[dict[str, Any]]
    """Per screened concept: concept, density, rank, name, clear, and its ArmResult."""
    settings: dict[str, Any]
    concept: int | None = None
    density: float | None = None
    rank: int | None = None
    target: str | None = None
    chosen: dict[str, float] = field(default_factory=dict)
    sweeps: dict[str, SweepResult] = field(default_factory=dict)
    final: SteeringEvaluation | None = None

    def clear(self) -> dict[str, bool]:
        """Final CoCoMix evaluation: success metric -> clear of unsteered and control."""
        if self.final is None:
            return {}
        return {m: self.final.arms["cocomix"].clear(m) for m in SUCCESS}

    def to_dict(self) -> dict[str, Any]:
        return {"live": self.live, "median_density": self.median_density,
                "settings": self.settings,
                "screen": [{k: (v.to_dict() if isinstance(v, ArmResult) else v)
                            for k, v in row.items()} for row in self.screen],
                "concept": self.concept, "density": self.density, "rank": self.rank,
                "target": self.target, "chosen": self.chosen, "clear": self.clear(),
                "sweeps": {k: s.to_dict() for k, s in self.sweeps.items()},
                "final": self.final.to_dict() if self.final else None}

    def markdown(self) -> str:
        st = self.settings
        metrics = st["metrics"]
        md = [f"{self.live} live concepts; median prediction density "
              f"{self.median_density:.1%}.", "",
              f"## Screen: the {len(self.screen)} densest"
              + (f" {st['truth']} concepts (ground-truth match {st['truth']}=...)"
                 if st.get("truth") else "")
              + f", add {st['strength']:g} std, "
              f"{st['screen_samples']} samples (steered [CI] vs unsteered / control)", ""]
        rows = [(row["concept"], row["name"], f"{row['density']:.1%} ({row['rank']})",
                 *(_cell(row["result"], m) for m in metrics), "yes" if row["clear"] else "no")
                for row in self.screen]
        md.append(markdown_table(("concept", "name", "density (rank)", *metrics, "clear"),
                                 rows))
        if self.final is None:
            return "\n".join(md + ["", "No screened concept passed."]) + "\n"
        verdict = ", ".join(f"{m}: {'yes' if v else 'no'}" for m, v in self.clear().items())
        times = (f" ({self.density / self.median_density:.1f}× the median)"
                 if self.median_density > 0 else "")
        md += ["", f"## Concept {self.concept}: prediction density {self.density:.1%}, rank "
               f"{self.rank} of {self.live}{times}"
               + (f"; oracle target read off its top output tokens: {self.target}"
                  if self.target else ""), "",
               f"Chosen strengths ({st['fluency']} within bounds): CoCoMix add "
               f"{self.chosen['cocomix_add']:g} std, SAE {self.chosen['sae']:g}. Final, "
               f"{st['samples']} fresh samples (seed {st['final_seed']}), clear of unsteered "
               f"and control: {verdict}.", "", "```"]
        md += [s.table() for s in self.sweeps.values()] + [self.final.table(), "```"]
        return "\n".join(md) + "\n"


def _cell(r: ArmResult, metric: str) -> str:
    info = next(m for m in r.metrics if m.name == metric)
    s, u, k = (r.estimate(metric, c) for c in ("steered", "unsteered", "control"))
    return (f"{s.format(info.log_scale)} vs {u.format(info.log_scale).split(' [')[0]} / "
            f"{k.format(info.log_scale).split(' [')[0]}")


def screen_concept(harness: Harness, concept: int, strength: float,
                   controls: dict[tuple[int, float], Method]) -> ArmResult:
    """`sweep`'s arm at one strength (the same methods, the same numbers), with the control
    Method taken from (and added to) `controls`, so the harness draws each control once."""
    run, ev = harness.run, harness.evaluation
    k = pick_control(run, concept, ev.control, harness.sampling.seed)
    if (k, strength) not in controls:
        controls[k, strength] = op_method(run, "add", k, strength)
    return harness.arm(op_method(run, "add", concept, strength), controls[k, strength],
                       "cocomix", concept)


def steer_densest(run: Any, settings: ScreenSettings = ScreenSettings(),
                  sampling: Sampling = Sampling(), prompts: list[str] | None = None,
                  progress: Progress = no_progress) -> DenseSteering:
    """Screen the `settings.n` densest live concepts with an add edit of `settings.strength`
    stds, then sweep add and SAE steering of the densest passing concept and evaluate both at
    the strengths chosen within `settings.bounds` (module docstring)."""
    st = settings
    flu = fluency_metric(run)
    metrics = (*SUCCESS, flu)
    cat = run.catalogue.concepts
    live = cat.loc[~cat["dead"], "prediction_density"]
    ev = Evaluation(n_samples=st.screen_samples, n_boot=st.n_boot, scorers=metrics,
                    batch_prompts=st.batch_prompts)
    res = DenseSteering(live=int(live.size), median_density=float(live.median()), screen=[],
                        settings={**asdict(st), "sampling": sampling.kwargs(),
                                  "fluency": flu, "metrics": list(metrics)})
    # One harness and one control Method per control concept: the unsteered and control
    # samples are drawn once for every screened concept, and only scored per concept.
    screen = Harness(run, list(prompts) if prompts else default_prompts(run), sampling, ev)
    controls: dict[tuple[int, float], Method] = {}
    chosen = densest_concepts(run, st.n, st.truth)
    for c, dens, rank in progress(chosen, len(chosen), "screen"):
        r = screen_concept(screen, c, st.strength, controls)
        res.screen.append({"concept": c, "density": dens, "rank": rank,
                           "name": run.catalogue.names([c])[0],
                           "clear": all(r.clear(m) for m in SUCCESS), "result": r})
    passed = [row for row in res.screen if row["clear"]]
    if not passed:
        return res
    first = passed[0]
    res.concept, res.density, res.rank = first["concept"], first["density"], first["rank"]
    res.target = oracle_target(run, res.concept)
    if res.target:  # reported beside the measures, never used to choose
        metrics = (*SUCCESS, "oracle_on_target", flu)
    ev = replace(ev, n_samples=st.sweep_samples, scorers=metrics)
    res.sweeps = {"cocomix_add": sweep(run, res.concept, "add", st.add, prompts, sampling, ev),
                  "sae": sweep(run, res.concept, "add", st.sae, prompts, sampling, ev,
                               arm="sae")}
    res.chosen = {k: pick_strength(s, flu, st.bounds) for k, s in res.sweeps.items()}
    res.final = evaluate_steering(
        run, SteeringSpec().add(res.concept, res.chosen["cocomix_add"]), prompts,
        replace(sampling, seed=st.final_seed),
        replace(ev, n_samples=st.samples, n_boot=st.n_boot * 2),
        sae_strength=res.chosen["sae"])
    return res
