"""Exact steering scores on the synthetic world: the oracle reads every generated sentence.

Importing this module registers them into the steering scorer registry
(`cocomix_lens.steering.scorers.register_scorer`; `steering/` never names the world), applying
only to runs whose corpus is the world. A world `Run` imports it itself when it is scored
(`Run.load_corpus_scorers`, called by `scorers_for`), so no caller needs to import it first:
- `oracle_on_target` (success): share of a sample's sentences on the steered topic, or
  mentioning the steered character; the target comes from `extras["topic"]` /
  `extras["character"]` or, failing those, from the world words among the concept's top output
  tokens (`world_target`); NaN (undefined) when neither names one;
- `oracle_grammatical` (fluency): share of its sentences the grammar parses;
- `oracle_relevance` (fluency): share of its sentences that keep talking about a character
  the prompt named (`cocomix_lens.world.scoring.kept_share`: names and resolved pronouns).
Sentences are counted as `cocomix_lens.world.scoring` counts them, on the generated text only,
so prompts should end at a sentence boundary (`default_prompts` gives whole first sentences).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import numpy as np

from cocomix_lens.steering.scorers import Readings, Scorer, register_scorer, top_output_tokens
from cocomix_lens.world import (
    FEMALE_NAMES,
    MALE_NAMES,
    TOPIC_NAMES,
    grammatical_share,
    mention_share,
    tag_of,
    topic_share,
)
from cocomix_lens.world.scoring import kept_share

log = logging.getLogger(__name__)


def is_world_run(run: Any) -> bool:
    """Whether the run's shards were prepared from the world corpus."""
    try:
        return run.shards.manifest["corpus"]["source"] == "world"
    except (FileNotFoundError, KeyError, TypeError, AttributeError):
        return False


class NoTarget(ValueError):
    """The concept's top output tokens name no topic or character, and no extras name one."""


def world_target(run: Any, concept: int, extras: dict[str, Any]) -> tuple[str, str]:
    """("topic", name) or ("character", name) the concept is steered towards: from `extras`,
    else the most common topic (or name) among the world words of its top output tokens."""
    given = [(k, str(extras[k])) for k in ("topic", "character") if extras.get(k)]
    if len(given) > 1:
        raise ValueError("extras name both a topic and a character; fix: give one of the two "
                         "(topic= or character=)")
    for kind, name in given:
        known = TOPIC_NAMES if kind == "topic" else (*MALE_NAMES, *FEMALE_NAMES)
        if name not in known:
            raise ValueError(f"extras {kind}={name!r} is not a {kind} of the world; fix: use "
                             f"one of {', '.join(known)}")
        return kind, name
    words = [run.tokenizer.decode([t]).strip() for t in top_output_tokens(run, concept).tolist()]
    tags = [tag_of(w) for w in words if w]
    topics = Counter(t.split(":")[1] for t in tags if t and t.split(":")[0] in _TOPIC_TAGS)
    if topics:
        return "topic", topics.most_common(1)[0][0]
    names = [w for w, t in zip(words, tags) if t and t.startswith("NAME:")]
    if names:
        return "character", names[0]
    raise NoTarget(f"concept {concept}'s top output tokens ({', '.join(words)}) name no "
                   "topic or character of the world; fix: pass extras={'topic': NAME}")


_TOPIC_TAGS = frozenset({"N", "NS", "ADJ", "ROLE", "VB", "VZ", "VD"})


def _on_target(r: Readings) -> np.ndarray:
    try:
        kind, name = r.extras.get("_target") or world_target(r.run, r.concept, r.extras)
    except NoTarget as e:
        # Undefined, not an error: most concepts (tense, pronouns, sentence acts) have no topic
        # or character to check, and every world evaluation runs this scorer by default. A
        # target named in extras that the world lacks still raises (bad input).
        log.info("oracle_on_target is undefined (NaN): %s", e)
        return np.full(len(r.gens.texts), np.nan)
    share = topic_share if kind == "topic" else mention_share
    return np.array([share([t], name).value for t in r.gens.texts], dtype=np.float64)


def _grammatical(r: Readings) -> np.ndarray:
    return np.array([grammatical_share([t]).value for t in r.gens.texts], dtype=np.float64)


def _relevance(r: Readings) -> np.ndarray:
    toks, starts = r.gens.tokens.tolist(), r.gens.prompt_lens.tolist()
    prompts = r.run.tokenizer.decode_batch([row[:p] for row, p in zip(toks, starts)],
                                           skip_special_tokens=True)
    return np.array([kept_share(p, t) for p, t in zip(prompts, r.gens.texts)],
                    dtype=np.float64)


for _s in (
    Scorer("oracle_on_target", _on_target, "success",
           "share of generated sentences on the steered topic / mentioning the character "
           "(world oracle)", applies=is_world_run),
    Scorer("oracle_grammatical", _grammatical, "fluency",
           "share of generated sentences the world grammar parses", applies=is_world_run),
    Scorer("oracle_relevance", _relevance, "fluency",
           "share of generated sentences about a character the prompt named (world oracle)",
           applies=is_world_run),
):
    register_scorer(_s)
