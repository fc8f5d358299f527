"""What a steering evaluation measures on generated text, with every edit switched off.

A scorer maps one batch of generations (`Readings`) to one value per sample. `Readings` runs
each model at most once per batch (lazily, cached), outside any steering context, so the score
of a steered generation is never read off the steered model itself. Scorers live in a registry;
`register_scorer` adds more (e.g. a corpus oracle that only applies to some runs).

Positions: a sample is `prompt + generated`, right-padded with <|endoftext|> after its end.
"generated positions" are the generated tokens before the first <|endoftext|>.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cocomix_lens.catalogue.readout import direct_logits, top_tokens
from cocomix_lens.concepts.capture import IGNORE
from cocomix_lens.concepts.extractor import ConceptExtractor, decoder_directions
from cocomix_lens.model.concept import top_k_mask

TOP_TOKENS = 10  # how many of a concept's top output tokens the token metrics use


@dataclass
class Generations:
    """A batch of generated samples and where their generated tokens are."""

    tokens: Tensor  # [n, pos] int64 prompt + generated, EOS-padded on the right
    prompt_lens: Tensor  # [n] tokens in each prompt
    gen_lens: Tensor  # [n] generated tokens before the first EOS
    texts: list[str]  # [n] the generated text (prompt excluded)

    @property
    def mask(self) -> Tensor:
        """[n, pos] True at generated positions."""
        pos = torch.arange(self.tokens.shape[1])[None]
        start = self.prompt_lens[:, None]
        return (pos >= start) & (pos < start + self.gen_lens[:, None])

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def select(self, idx: slice) -> Generations:
        return Generations(self.tokens[idx], self.prompt_lens[idx], self.gen_lens[idx],
                           self.texts[idx])


@dataclass
class Readings:
    """Lazily computed, steering-free model readings of one batch of generations."""

    run: Any  # a cocomix_lens Run (teacher, sae, student, baseline, tokenizer)
    concept: int  # the concept whose effect is scored
    gens: Generations
    extras: dict[str, Any] = field(default_factory=dict)  # per-evaluation context for plugins

    @cached_property
    def mask(self) -> Tensor:
        return self.gens.mask

    @cached_property
    def teacher_logits(self) -> Tensor:
        """[n, pos, d_vocab]"""
        with torch.no_grad():
            return self.run.teacher(self.gens.tokens)

    @cached_property
    def sae_acts(self) -> Tensor:
        """[n, pos] the teacher's SAE activation of the concept."""
        ex = ConceptExtractor(self.run.teacher, self.run.sae, method="activation")
        return ex.scores(self.gens.tokens)[..., self.concept]

    @cached_property
    def attribution(self) -> Tensor:
        """[n, pos] the concept's attribution score (the label method) on the text itself."""
        ex = ConceptExtractor(self.run.teacher, self.run.sae)
        return ex.scores(self.gens.tokens, targets=self.targets)[..., self.concept]

    @cached_property
    def targets(self) -> Tensor:
        """[n, pos] next-token targets inside each sample (IGNORE after its end)."""
        toks = self.gens.tokens
        nxt = torch.cat([toks[:, 1:], torch.full_like(toks[:, :1], IGNORE)], dim=1)
        end = (self.gens.prompt_lens + self.gens.gen_lens)[:, None]
        keep = torch.arange(toks.shape[1])[None] < end - 1
        return nxt.masked_fill(~keep, IGNORE)

    @cached_property
    def student_concept_logits(self) -> Tensor:
        """[n, pos, n_concepts] the unsteered student's concept logits."""
        with torch.no_grad():
            _, z = self.run.student(self.gens.tokens, return_concept_logits=True)
        return z

    @cached_property
    def baseline_logits(self) -> Tensor:
        with torch.no_grad():
            return self.run.baseline(self.gens.tokens)

    @cached_property
    def top_tokens(self) -> Tensor:
        return top_output_tokens(self.run, self.concept)

    def gen_mean(self, values: Tensor) -> np.ndarray:
        """[n] mean of `values` [n, pos] over each sample's generated positions (NaN if none)."""
        m = self.mask.to(values.dtype)
        total = (values * m).sum(-1)
        count = m.sum(-1)
        out = torch.where(count > 0, total / count.clamp(min=1), torch.nan)
        return out.double().cpu().numpy()

    def nll(self, logits: Tensor) -> np.ndarray:
        """[n] mean next-token NLL of the generated tokens (each predicted from before it)."""
        toks = self.gens.tokens
        lp = logits[:, :-1].float().log_softmax(-1).gather(-1, toks[:, 1:, None])[..., 0]
        nll = F.pad(-lp, (1, 0))  # position t holds -log p(token t | < t)
        return self.gen_mean(nll)


def top_output_tokens(run: Any, concept: int, n: int = TOP_TOKENS) -> Tensor:
    """[n] the tokens the concept's SAE decoder direction promotes most through the teacher's
    unembedding (the catalogue's direct-path readout, so both list the same tokens)."""
    direction = decoder_directions(run.sae)[concept : concept + 1]
    return top_tokens(direct_logits(direction, run.teacher), n)[0][0]


@dataclass(frozen=True)
class Scorer:
    """One metric: per-sample values from `Readings`."""

    name: str
    fn: Callable[[Readings], np.ndarray]  # -> [n] float, NaN where undefined
    kind: str  # "success" (should rise when steering works) or "fluency"
    doc: str
    log_scale: bool = False  # values are logs: tables show exp(mean) (a geometric mean)
    applies: Callable[[Any], bool] = lambda run: True  # whether it applies to this run


SCORERS: dict[str, Scorer] = {}
"""name -> Scorer; evaluate_steering uses every registered scorer that applies to the run."""

KINDS = ("success", "fluency")


def register_scorer(scorer: Scorer) -> Scorer:
    """Add (or replace) a scorer in the registry; returns it."""
    if scorer.kind not in KINDS:
        raise ValueError(f"scorer {scorer.name!r} has kind {scorer.kind!r}; use one of {KINDS}")
    SCORERS[scorer.name] = scorer
    return scorer


def scorers_for(run: Any, names: list[str] | None = None) -> list[Scorer]:
    """The registered scorers that apply to `run` (or exactly `names`, in that order). A run
    that brings scorers of its corpus (`Run.load_corpus_scorers`) registers them first."""
    load = getattr(run, "load_corpus_scorers", None)
    if load is not None:
        load()
    if names is None:
        return [s for s in SCORERS.values() if s.applies(run)]
    unknown = [n for n in names if n not in SCORERS]
    if unknown:
        raise ValueError(f"unknown scorer(s) {unknown}; choose from {sorted(SCORERS)}")
    return [SCORERS[n] for n in names]


def _distinct(n: int) -> Callable[[Readings], np.ndarray]:
    def score(r: Readings) -> np.ndarray:
        out = []
        for row, start, length in zip(r.gens.tokens.tolist(), r.gens.prompt_lens.tolist(),
                                      r.gens.gen_lens.tolist()):
            gen = row[start:start + length]
            grams = [tuple(gen[i:i + n]) for i in range(len(gen) - n + 1)]
            out.append(len(set(grams)) / len(grams) if grams else np.nan)
        return np.asarray(out, dtype=np.float64)
    return score


def _top_token_share(r: Readings) -> np.ndarray:
    return r.gen_mean(torch.isin(r.gens.tokens, r.top_tokens).float())


def _top_token_logprob(r: Readings) -> np.ndarray:
    """log of the NTP student's probability mass on the concept's top tokens, per position."""
    lp = r.baseline_logits.float().log_softmax(-1)[..., r.top_tokens].logsumexp(-1)
    return r.gen_mean(F.pad(lp[:, :-1], (1, 0)))  # the mass predicted for position t


def _student_in_topk(r: Readings) -> np.ndarray:
    z = r.student_concept_logits
    selected = top_k_mask(z, r.run.student.cfg.concept_top_k)[..., r.concept]
    return r.gen_mean(selected.float())


for _s in (
    Scorer("sae_act", lambda r: r.gen_mean(r.sae_acts), "success",
           "teacher's SAE activation of c, mean over generated tokens"),
    Scorer("sae_active", lambda r: r.gen_mean((r.sae_acts > 0).float()), "success",
           "share of generated tokens where c is among the SAE's active latents"),
    Scorer("attribution", lambda r: r.gen_mean(r.attribution), "success",
           "teacher's attribution score of c (the label method), mean over generated tokens"),
    Scorer("student_prob", lambda r: r.gen_mean(r.student_concept_logits.float().softmax(-1)
                                                [..., r.concept]), "success",
           "unsteered student's predicted probability of c reading the text"),
    Scorer("student_topk", _student_in_topk, "success",
           "share of generated tokens where the unsteered student puts c in its top-k"),
    Scorer("top_token_share", _top_token_share, "success",
           f"share of generated tokens among c's top-{TOP_TOKENS} output tokens"),
    Scorer("top_token_logprob", _top_token_logprob, "success",
           f"log-prob the NTP student gives c's top-{TOP_TOKENS} output tokens next"),
    Scorer("ppl_teacher", lambda r: r.nll(r.teacher_logits), "fluency",
           "perplexity of the generated tokens under the teacher", log_scale=True),
    Scorer("ppl_ntp", lambda r: r.nll(r.baseline_logits), "fluency",
           "perplexity of the generated tokens under the NTP student", log_scale=True),
    Scorer("distinct_1", _distinct(1), "fluency", "distinct tokens / generated tokens"),
    Scorer("distinct_2", _distinct(2), "fluency", "distinct bigrams / bigrams"),
    Scorer("length", lambda r: r.gens.gen_lens.double().numpy(), "fluency",
           "generated tokens before <|endoftext|>"),
):
    register_scorer(_s)
