"""Capped, streamed, optionally steered generation for the Steer page, and what it measures.

    ids = encode_prompt(tok, "The ship", n_ctx)                 # [1, pos]; ValueError if bad
    for token_id, text in stream_text(model, ids, Sampling(seed=0), edit):
        ...                                                     # text so far, one token a step
    trace = concept_trace(model, all_ids, ids.shape[1], concept)  # p(c) per generated token

Callers hold the run's model lock (app.resources.model_in_use): steering hooks live on the
shared model for the length of a generation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from app.config import MAX_NEW_TOKENS, MAX_PROMPT_CHARS, MAX_PROMPT_TOKENS

POSITIONS = ("all", "prompt", "generated")


@dataclass(frozen=True)
class Sampling:
    """Sampling settings; temperature 0 is greedy."""

    max_new_tokens: int = 40
    temperature: float = 0.8
    top_p: float | None = 0.95
    top_k: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class Edit:
    """One steering edit as the page shows it: op on concept with strength at positions."""

    concept: int
    op: str = "scale"
    strength: float = 8.0
    positions: str | list[int] = "all"
    extra: dict = field(default_factory=dict)


def encode_prompt(tokenizer, prompt: str, n_ctx: int) -> Tensor:
    """Prompt text -> token ids [1, pos]; one-line ValueError for empty or overlong prompts."""
    if not prompt or not prompt.strip():
        raise ValueError("the prompt is empty: type a few words to continue")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"the prompt has {len(prompt)} characters, more than the "
                         f"{MAX_PROMPT_CHARS} allowed: shorten it")
    ids = tokenizer.encode(prompt).ids
    cap = min(MAX_PROMPT_TOKENS, n_ctx - 1)
    if len(ids) > cap:
        raise ValueError(f"the prompt is {len(ids)} tokens, more than the {cap} this model "
                         f"takes (context {n_ctx}): shorten it")
    return torch.tensor([ids], dtype=torch.long)


def new_token_cap(n_ctx: int, prompt_len: int) -> int:
    """How many tokens may be generated after a prompt of `prompt_len` tokens."""
    return max(0, min(MAX_NEW_TOKENS, n_ctx - prompt_len))


def eos_ids(tokenizer) -> list[int]:
    from cocomix_lens.data.tokenizer import eos_id

    return [eos_id(tokenizer)]


# ---- steering --------------------------------------------------------------------------------
def available_ops() -> tuple[str, ...]:
    """Steering operations the installed library offers."""
    try:
        from cocomix_lens.steering import OPS
    except ImportError:  # the steering API has not landed: the paper's scale op via hooks
        return ("scale",)
    return tuple(OPS)


def _scale_hook(concept: int, factor: float) -> Callable:
    def hook(z: Tensor, hook) -> Tensor:
        z[..., concept] = z[..., concept] * factor
        return z

    return hook


@contextmanager
def steering(model, edit: Edit | None):
    """Hooks for `edit` on `model` for the body of the block (nothing when edit is None)."""
    if edit is None:
        with nullcontext():
            yield
        return
    try:
        from cocomix_lens.steering import steer
    except ImportError:
        with model.hooks(fwd_hooks=[("concept.hook_logits",
                                     _scale_hook(edit.concept, edit.strength))]):
            yield
        return
    with steer(model, to_spec(edit)):
        yield


def to_spec(edit: Edit):
    """The library's SteeringSpec for `edit`."""
    from cocomix_lens.steering import SteeringSpec

    return SteeringSpec.from_dict(edit_dict(edit))


def edit_dict(edit: Edit) -> dict:
    return asdict(edit)


def edit_to_json(edit: Edit) -> str:
    return json.dumps(edit_dict(edit), indent=2)


def edit_from_json(text: str) -> Edit:
    """An Edit from saved JSON; ValueError naming the problem."""
    try:
        data = json.loads(text)
        return Edit(concept=int(data["concept"]), op=str(data.get("op", "scale")),
                    strength=float(data.get("strength", 8.0)),
                    positions=data.get("positions", "all"), extra=data.get("extra", {}))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"the spec file is not a steering spec ({err}): save one from this "
                         "page and load that") from None


# ---- generation ------------------------------------------------------------------------------
def stream_text(model, ids: Tensor, sampling: Sampling,
                edit: Edit | None = None) -> Iterator[tuple[int, str]]:
    """Yield (token id, generated text so far) per new token; stops at <|endoftext|>."""
    tok = model.tokenizer
    n_new = min(sampling.max_new_tokens, new_token_cap(model.cfg.n_ctx, ids.shape[1]))
    new: list[int] = []
    with steering(model, edit):
        for nxt in model.stream(ids, n_new, temperature=sampling.temperature,
                                top_k=sampling.top_k, top_p=sampling.top_p,
                                stop_tokens=eos_ids(tok), seed=sampling.seed):
            token = int(nxt[0])
            if token in eos_ids(tok):
                return
            new.append(token)
            yield token, tok.decode(new)


def generate_ids(model, ids: Tensor, sampling: Sampling, edit: Edit | None = None) -> list[int]:
    """The generated token ids (no prompt), without streaming."""
    return [t for t, _ in stream_text(model, ids, sampling, edit)]


@torch.no_grad()
def concept_trace(model, ids: Sequence[int], prompt_len: int, concept: int) -> pd.DataFrame:
    """The unsteered student reading `ids`: per generated token, p(concept) (softmax over the
    concept logits at that position) and whether concept is in its top-k."""
    cols = ["token", "text", "prob", "in_topk"]
    gen = list(ids[prompt_len:])
    if not gen:
        return pd.DataFrame(columns=cols)
    x = torch.tensor([list(ids)], dtype=torch.long, device=model.device)
    _, z = model(x, return_concept_logits=True)  # [1, pos, n_concepts]
    z = z[0, prompt_len:].float()
    probs = z.softmax(-1)[:, concept]
    k = int(model.cfg.concept_top_k)
    in_top = (z.topk(min(k, z.shape[-1]), dim=-1).indices == concept).any(-1)
    texts = [model.tokenizer.decode([t]) for t in gen]
    return pd.DataFrame({"token": gen, "text": texts, "prob": probs.cpu().numpy(),
                         "in_topk": in_top.cpu().numpy()})


def distinct_n(tokens: Sequence[int], n: int = 2) -> float:
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


@torch.no_grad()
def perplexity(model, ids: Sequence[int], prompt_len: int) -> float:
    """Perplexity of the generated tokens given the prompt under `model` (unsteered)."""
    if len(ids) - prompt_len < 1 or prompt_len < 1:
        return float("nan")
    x = torch.tensor([list(ids)], dtype=torch.long, device=model.device)
    logp = model(x).float().log_softmax(-1)[0, :-1]
    target = x[0, 1:]
    nll = -logp.gather(-1, target[:, None])[:, 0][prompt_len - 1:]
    return float(nll.mean().exp())


def sample_metrics(model, ids: Sequence[int], prompt_len: int, concept: int,
                   scorer=None) -> dict[str, float]:
    """What the page shows for one sample: concept rate and probability (unsteered student),
    distinct-2, and the perplexity under `scorer` (the NTP baseline, else the student)."""
    trace = concept_trace(model, ids, prompt_len, concept)
    gen = list(ids[prompt_len:])
    return {"tokens": len(gen),
            "concept_rate": float(trace.in_topk.mean()) if len(trace) else float("nan"),
            "concept_prob": float(trace.prob.mean()) if len(trace) else float("nan"),
            "distinct_2": distinct_n(gen, 2),
            "perplexity": perplexity(scorer or model, ids, prompt_len)}


def sweep(model, ids: Tensor, concept: int, strengths: Sequence[float], sampling: Sampling,
          op: str = "scale", scorer=None,
          progress: Callable[[float], None] | None = None) -> pd.DataFrame:
    """Dose-response: one generation per strength (same seed), scored by sample_metrics."""
    rows = []
    prompt = ids[0].tolist()
    for i, s in enumerate(strengths):
        new = generate_ids(model, ids, sampling, Edit(concept=concept, op=op, strength=float(s)))
        rows.append({"strength": float(s),
                     **sample_metrics(model, prompt + new, len(prompt), concept, scorer)})
        if progress is not None:
            progress((i + 1) / len(strengths))
    return pd.DataFrame(rows)


def default_strengths(op: str) -> list[float]:
    return list(np.linspace(-10, 10, 9)) if op == "scale" else [0, 1, 2, 4, 8]
