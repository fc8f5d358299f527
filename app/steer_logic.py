"""Capped, streamed, steered generation for the Steer page, and what it measures.

    ids = encode_prompt(tok, "The ship", n_ctx)                 # [1, pos]; ValueError if bad
    spec = make_spec("scale", concept=12, strength=8.0)         # a cocomix_lens SteeringSpec
    spec = make_spec("scale", 12, 8.0, loaded=loaded_edits(saved))  # with a loaded spec's others
    for token_id, text in stream_text(model, ids, Sampling(seed=0), spec):
        ...                                                     # text so far, one token a step
    trace = concept_trace(model, all_ids, ids.shape[1], 12)     # p(c) per generated token
    scores = sample_scores(run, 12, {"default": ids_a, "steered": ids_b}, ids.shape[1])

Steering is the library's (`cocomix_lens.steering`); scores are its scorers, read with
steering off. Callers hold the run's model lock (app.resources.model_in_use): steering hooks
live on the shared model for the length of a generation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from torch import Tensor

import cocomix_lens.world.steering_scorers  # noqa: F401  (registers the oracle scorers)
from app.config import MAX_NEW_TOKENS, MAX_PROMPT_CHARS, MAX_PROMPT_TOKENS
from cocomix_lens.sampling import Sampling
from cocomix_lens.steering import OPS, Edit, SteeringSpec, describe_edit
from cocomix_lens.steering.spec import op_edit, parse_position_label, position_label

# Scores shown for the samples on the page (cocomix_lens.steering.scorers), when they apply.
SHOWN_SCORES = ("oracle_on_target", "oracle_grammatical", "student_topk", "student_prob",
                "sae_active", "top_token_share", "ppl_ntp", "ppl_teacher", "distinct_2",
                "length")
__all__ = ["Sampling", "describe_edit"]


def available_ops() -> tuple[str, ...]:
    return tuple(OPS)


def make_edit(op: str, concept: int, strength: float,
              positions: str | Sequence[int] = "all", std: float | None = None) -> Edit:
    """One library Edit from the page's controls (ValueError naming the fix if invalid);
    `positions` as the page's field reads (`spec.position_label`: "generated",
    "new_tokens:4", "new_sentences:3", "0,3,5") or a list of token indices."""
    pos, span = (parse_position_label(positions) if isinstance(positions, str)
                 else (tuple(int(p) for p in positions), None))
    edit = op_edit(op, concept, strength, pos, span)
    return replace(edit, std=std) if std is not None and "std" in OPS[op].fields else edit


def prefill(run, concept: int) -> dict:
    """The Steer page's controls for `concept` at its best measured setting
    (`cocomix_lens.steering.best.best_setting`), with the label of where it comes from."""
    from cocomix_lens.steering.best import best_setting

    s = best_setting(run, concept)
    return {"steer_concept": int(concept), "steer_op": s.op, "steer_strength": s.strength,
            "steer_positions": "all", "steer_search": "", "steer_loaded": (),
            "steer_loaded_std": {}, "steer_setting": (int(concept), s.op, s.strength,
                                                      s.source)}


def make_spec(op: str, concept: int, strength: float, positions: str | Sequence[int] = "all",
              std: float | None = None, loaded: Sequence[Edit | None] = ()) -> SteeringSpec:
    """The page's edit, alone or in its place among a loaded spec's edits (`loaded_edits`:
    None marks the place). The library applies every edit, in ops.ORDER (scale, add, ban,
    force, set, vector), edits of one op in spec order."""
    edit = make_edit(op, concept, strength, positions, std)
    if None not in loaded:
        return SteeringSpec((edit, *loaded))
    return SteeringSpec(tuple(edit if e is None else e for e in loaded))


def fits_controls(edit: Edit) -> bool:
    """Whether the page's controls can show the edit (one concept, no given vector)."""
    return (edit.op in OPS and edit.vector is None
            and (edit.concepts is None or len(edit.concepts) == 1))


def shown_edit(spec: SteeringSpec) -> int:
    """Index of the edit the controls show: the spec's first that fits them."""
    if not spec.edits:
        raise ValueError("the spec has no edits: save one from this page and load that")
    for i, e in enumerate(spec.edits):
        if fits_controls(e):
            return i
    raise ValueError("none of the spec's edits fits this page's controls (a set of several "
                     "concepts or a given vector): apply it with the library, "
                     "model.generate(..., steering=SteeringSpec.load(path))")


def loaded_edits(spec: SteeringSpec) -> tuple[Edit | None, ...]:
    """The spec's edits with None in place of the one the controls show (for make_spec)."""
    i = shown_edit(spec)
    return (*spec.edits[:i], None, *spec.edits[i + 1:])


def spec_controls(spec: SteeringSpec) -> dict:
    """The page's controls for a loaded spec's shown edit (`shown_edit`): concept, op,
    strength, positions. Its other edits (`loaded_edits`) are listed and applied too."""
    e = spec.edits[shown_edit(spec)]
    concept = e.concept if e.concept is not None else e.concepts[0]
    strength = e.value if e.value is not None else (e.weights[0] if e.weights else 0.0)
    pos = position_label(e.positions, e.span)
    return {"steer_concept": int(concept), "steer_op": e.op, "steer_strength": float(strength),
            "steer_positions": pos}


def encode_prompt(tokenizer, prompt: str, n_ctx: int) -> Tensor:
    """Prompt text -> token ids [1, pos] (the library's prompt encoder, `prompt_ids`); one-line
    ValueError for empty or overlong prompts."""
    from cocomix_lens.data.tokenizer import prompt_ids

    if not prompt or not prompt.strip():
        raise ValueError("the prompt is empty: type a few words to continue")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"the prompt has {len(prompt)} characters, more than the "
                         f"{MAX_PROMPT_CHARS} allowed: shorten it")
    ids = prompt_ids(tokenizer, prompt)
    cap = min(MAX_PROMPT_TOKENS, n_ctx - 1)
    if len(ids) > cap:
        raise ValueError(f"the prompt is {len(ids)} tokens, more than the {cap} this model "
                         f"takes (context {n_ctx}): shorten it")
    return torch.tensor([ids], dtype=torch.long)


def encode_for_scoring(run, model, prompt: str, max_new_tokens: int) -> Tensor:
    """`encode_prompt`, and the prompt plus `max_new_tokens` within the context of both the
    student and the teacher that scores the samples: refused before generating, not after."""
    limit = min(int(model.cfg.n_ctx), int(getattr(run.teacher.cfg, "n_ctx", model.cfg.n_ctx)))
    ids = encode_prompt(model.tokenizer, prompt, limit)
    if ids.shape[1] + max_new_tokens > limit:
        raise ValueError(f"the prompt ({ids.shape[1]} tokens) plus {max_new_tokens} new tokens "
                         f"exceed the {limit}-token context the samples are generated and "
                         f"scored in; fix: at most {limit - ids.shape[1]} new tokens, or a "
                         "shorter prompt")
    return ids


def new_token_cap(n_ctx: int, prompt_len: int) -> int:
    """How many tokens may be generated after a prompt of `prompt_len` tokens."""
    return max(0, min(MAX_NEW_TOKENS, n_ctx - prompt_len))


# ---- generation ------------------------------------------------------------------------------
def stream_text(model, ids: Tensor, sampling: Sampling,
                spec: SteeringSpec | None = None) -> Iterator[tuple[int, str]]:
    """Yield (token id, generated text so far) per new token; stops at <|endoftext|>."""
    from cocomix_lens.data.tokenizer import eos_id

    tok, eos = model.tokenizer, eos_id(model.tokenizer)
    n_new = min(sampling.max_new_tokens, new_token_cap(model.cfg.n_ctx, ids.shape[1]))
    new: list[int] = []
    for nxt in model.stream(ids, n_new, temperature=sampling.temperature,
                            top_k=sampling.top_k, top_p=sampling.top_p, seed=sampling.seed,
                            steering=spec):
        token = int(nxt[0])
        if token == eos:
            return
        new.append(token)
        yield token, tok.decode(new)


def generate_ids(model, ids: Tensor, sampling: Sampling,
                 spec: SteeringSpec | None = None) -> list[int]:
    """The generated token ids (no prompt), without streaming."""
    return [t for t, _ in stream_text(model, ids, sampling, spec)]


@torch.no_grad()
def concept_trace(model, ids: Sequence[int], prompt_len: int, concept: int) -> pd.DataFrame:
    """The unsteered student reading `ids`: per generated token, p(concept) (softmax over the
    concept logits at that position) and whether concept is in its top-k."""
    from cocomix_lens.model.concept import top_k_mask

    cols = ["token", "text", "prob", "in_topk"]
    gen = list(ids[prompt_len:])
    if not gen:
        return pd.DataFrame(columns=cols)
    x = torch.tensor([list(ids)], dtype=torch.long, device=model.device)
    _, z = model(x, return_concept_logits=True)  # [1, pos, n_concepts]
    z = z[0, prompt_len:].float()
    probs = z.softmax(-1)[:, concept]
    in_top = top_k_mask(z, int(model.cfg.concept_top_k))[:, concept]
    texts = [model.tokenizer.decode([t]) for t in gen]
    return pd.DataFrame({"token": gen, "text": texts, "prob": probs.cpu().numpy(),
                         "in_topk": in_top.cpu().numpy()})


def sample_scores(run, concept: int, samples: dict[str, Sequence[int]],
                  prompt_len: int) -> pd.DataFrame:
    """The library's steering scores (steering off) of each shown sample: rows = samples,
    columns = SHOWN_SCORES that apply to the run; perplexities as perplexities."""
    from cocomix_lens.data.tokenizer import eos_id
    from cocomix_lens.steering.evaluate import score
    from cocomix_lens.steering.scorers import SCORERS, Generations, scorers_for

    eos = eos_id(run.tokenizer)
    names = list(samples)
    width = max(len(s) for s in samples.values())
    tokens = torch.full((len(names), width), eos, dtype=torch.long)
    for i, s in enumerate(samples.values()):
        tokens[i, :len(s)] = torch.tensor(list(s))
    gens = Generations(tokens, torch.full((len(names),), prompt_len),
                       torch.tensor([len(s) - prompt_len for s in samples.values()]),
                       [run.tokenizer.decode(list(s[prompt_len:])) for s in samples.values()])
    use = [s for s in scorers_for(run) if s.name in SHOWN_SCORES]
    values = score(run, concept, gens, use)
    table = pd.DataFrame({n: np.exp(v) if SCORERS[n].log_scale else v
                          for n, v in values.items()}, index=names)
    return table[[n for n in SHOWN_SCORES if n in table]]


SWEEP_SAMPLES, SWEEP_NEW_TOKENS, SWEEP_BOOT = 4, 24, 200
"""The page's sweep: generations per condition and strength, their length cap, resamples."""


def sweep_settings(sampling: Sampling):
    """(Sampling, Evaluation) of the page's sweep: the page's sampling, shorter."""
    from cocomix_lens.steering.evaluate import Evaluation

    short = replace(sampling, max_new_tokens=min(SWEEP_NEW_TOKENS, sampling.max_new_tokens))
    return short, Evaluation(n_samples=SWEEP_SAMPLES, n_boot=SWEEP_BOOT)


def sweep(run, prompt: str, concept: int, op: str, strengths: Sequence[float],
          sampling: Sampling, positions: str | Sequence[int] = "all",
          progress: Callable | None = None):
    """Dose-response with the library's `sweep` (its harness: the prompt encoder, sampler and
    every scorer steer-eval uses; steered vs random-concept control, CIs) at `sweep_settings`;
    returns the library's SweepResult and its tidy rows (`sweep_rows`)."""
    from cocomix_lens.progress import no_progress
    from cocomix_lens.steering.evaluate import sweep as lib_sweep
    from cocomix_lens.steering.method import spec_method

    def make(c: int, s: float):
        return spec_method(run, make_spec(op, c, s, positions))

    short, evaluation = sweep_settings(sampling)
    res = lib_sweep(run, concept, op, list(strengths), [prompt], short, evaluation, make=make,
                    progress=progress or no_progress)
    return res, sweep_rows(res)


def sweep_rows(res) -> pd.DataFrame:
    """A SweepResult as tidy rows strength, metric, condition, mean, lo, hi (perplexities as
    perplexities)."""
    rows = []
    for s, r in zip(res.strengths, res.results):
        for m in r.metrics:
            f = np.exp if m.log_scale else (lambda x: x)
            for cond in ("steered", "control", "unsteered"):
                e = r.estimate(m.name, cond)
                rows.append({"strength": s, "metric": m.name, "condition": cond,
                             "mean": float(f(e.mean)), "lo": float(f(e.lo)),
                             "hi": float(f(e.hi))})
    return pd.DataFrame(rows)


def default_strengths(op: str) -> list[float]:
    """The sweep's strengths: the op's range in 5 (or 7, when it spans 0) steps."""
    if OPS[op].range is None:
        return [0.0]
    lo, hi = OPS[op].range
    return [float(x) for x in np.linspace(lo, hi, 5 if lo >= 0 else 7)]


def measured_table(doc: dict) -> pd.DataFrame:
    """`steer-eval --densest`'s final evaluation (Run.steering) as rows: arm, metric, and
    steered / unsteered / control as 'mean [lo, hi]', with whether the steered interval lies
    above both others (success metrics only)."""
    from cocomix_lens.steering.stats import Estimate

    final = doc.get("final") or {}
    rows = []
    for arm, res in final.get("arms", {}).items():
        log_scale = {m["name"]: m.get("log_scale", False) for m in res.get("metrics", [])}
        for metric, est in res["summary"].items():
            cells = {c: Estimate.from_dict(est[c]).format(log_scale.get(metric, False))
                     for c in ("steered", "unsteered", "control")}
            clear = est.get("clear")
            rows.append({"arm": arm, "metric": metric, **cells,
                         "clear of both": ("" if clear is None else
                                           "yes" if clear["above_unsteered"]
                                           and clear["above_control"] else "no")})
    return pd.DataFrame(rows, columns=["arm", "metric", "steered", "unsteered", "control",
                                       "clear of both"])
