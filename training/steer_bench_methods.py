"""The methods `cocomix-lens steer-bench` measures for one topic (training/steer_bench.py):
CoCoMix concept edits, DiffMean at a hook and in concept-vector space, classic SAE steering,
prompting, and the controls, each a `cocomix_lens.steering.topic_methods.TopicMethod`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np


@dataclass
class TopicKit:
    """What the methods of one topic are built from."""

    topic: str
    concepts: Any  # TopicConcepts (student)
    sae_concept: int
    means: Any  # TopicMeans
    ids: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]  # concept set -> (raise, ban)


def topic_kit(run: Any, topic: str, cfg: Any, means: Any) -> TopicKit:
    from cocomix_lens.steering.topics import topic_concepts
    from cocomix_lens.steering.toward import TopicRecipe

    ids = {which: TopicRecipe("add", which, "all", 0.0, "").ids(run, topic)
           for which in cfg.concept_sets}
    return TopicKit(topic, topic_concepts(run, topic),
                    topic_concepts(run, topic, source="sae").best, means, ids)


def cocomix_method(kit: TopicKit, op: str, which: str, positions: str,
                   strength: float | None, run: Any,
                   ids: tuple[tuple[int, ...], tuple[int, ...]] | None = None):
    """A CoCoMix edit (`toward.TopicRecipe`) of the topic's concepts (`which`: a
    `toward.CONCEPT_SETS` entry), or of `ids` = (concepts to raise, concepts to ban) (the
    random-concept control), at `positions` (a `spec.position_label`)."""
    from cocomix_lens.steering.spec import parse_position_label
    from cocomix_lens.steering.topic_methods import TopicMethod
    from cocomix_lens.steering.toward import TopicRecipe

    where, span = parse_position_label(positions)
    recipe = TopicRecipe(op, which, where, strength, source="steer-bench candidate",
                         span=span)
    raise_ids, ban = kit.ids[which] if ids is None else ids
    return TopicMethod("cocomix", f"{op}/{which}/{positions}", kit.topic, strength,
                       recipe.spec(run, raise_ids, ban),
                       extra={"concepts": list(raise_ids), "banned": list(ban),
                              "how": kit.concepts.how})


def grid(cfg: Any, op: str, which: str, positions: str = "all") -> tuple[float | None, ...]:
    """The strengths searched for `op` on concept set `which` at `positions`: the config's
    most specific grid ("add/single/new_tokens", "add/new_tokens", "add/single"), else the
    op's."""
    where = positions.partition(":")[0]
    for key in (f"{op}/{which}/{where}", f"{op}/{where}", f"{op}/{which}"):
        if key in cfg.grids:
            return cfg.grids[key]
    return cfg.grids[op]


def diffmean_method(kit: TopicKit, hook: str, strength: float, positions: str = "all"):
    """DiffMean at `hook`, added at `positions` (`method.residual_method`); the variant is the
    hook, then the positions when they are not all of them."""
    from cocomix_lens.steering.topic_methods import TopicMethod

    v = strength * kit.means.diffmean(hook, kit.topic)
    variant = hook if positions == "all" else f"{hook}/{positions}"
    return TopicMethod("diffmean", variant, kit.topic, strength, hook=hook,
                       vector=tuple(float(x) for x in v), positions=positions)


def diffmean_vector_method(kit: TopicKit, strength: float, positions: str = "all",
                           family: str = "diffmean_vector", means: Any = None):
    """A `vector` edit of c_t along the topic's difference of means at "concept.hook_vector"
    (`means`, default the kit's topic means; `family` names where they come from: the topic's
    tokens, or `switch_vector`'s switch lines), at `positions` (a `spec.position_label`)."""
    from cocomix_lens.steering.spec import Edit, SteeringSpec, parse_position_label
    from cocomix_lens.steering.topic_methods import TopicMethod

    v = (kit.means if means is None else means).diffmean("concept.hook_vector", kit.topic)
    where, span = parse_position_label(positions)
    spec = SteeringSpec((Edit("vector", None, strength, where, span=span,
                              vector=tuple(float(x) for x in v)),))
    return TopicMethod(family, positions, kit.topic, strength, spec)


def sae_method(kit: TopicKit, run: Any, strength: float, norm: float):
    from cocomix_lens.concepts.extractor import decoder_directions
    from cocomix_lens.steering.topic_methods import TopicMethod

    unit = decoder_directions(run.sae)[kit.sae_concept].float()
    v = strength * norm * unit / unit.norm()
    return TopicMethod("sae", "best latent", kit.topic, strength,
                  hook=run.sae.cfg.metadata.hook_name, vector=tuple(float(x) for x in v),
                  extra={"concept": kit.sae_concept, "resid_norm": norm})


def sae_norm(run: Any, openings: list) -> float:
    """Mean residual norm at the SAE's hook over the openings, each prompt on its own."""
    import torch

    from cocomix_lens.steering.evaluate import encode_prompts

    hook = run.sae.cfg.metadata.hook_name
    norms = []
    with torch.no_grad():
        for ids in encode_prompts(run.tokenizer, [o.text for o in openings]):
            _, cache = run.teacher.run_with_cache(ids[None], names_filter=hook)
            norms.append(float(cache[hook].norm(dim=-1).mean()))
    return float(np.mean(norms))


def candidates(bench: Any, kit: TopicKit, sae_resid: float) -> dict[str, list]:
    """variant key -> its methods over the strength grid (selection-half candidates)."""
    cfg, run, out = bench.cfg, bench.run, {}
    for op in cfg.ops:
        for which in cfg.concept_sets:
            if which == "set" and len(kit.concepts.concepts) < 2:
                continue  # the set is the single concept
            starts = cfg.start_positions if op in cfg.start_ops else ()
            for pos in (*cfg.positions, *starts):
                ms = [cocomix_method(kit, op, which, pos, s, run)
                      for s in grid(cfg, op, which, pos)]
                out[ms[0].key] = ms
    for hook in bench.hooks():
        ms = [diffmean_method(kit, hook, s) for s in cfg.grids["diffmean"]]
        out[ms[0].key] = ms
    ms = [diffmean_vector_method(kit, s) for s in cfg.grids["diffmean_vector"]]
    out[ms[0].key] = ms
    # the baselines at the start positions too, so that where an edit acts is not what
    # separates CoCoMix from DiffMean: at the residual the concept head reads, and in c_t
    for pos in cfg.start_positions:
        ms = [diffmean_method(kit, bench.concept_hook(), s, pos)
              for s in grid(cfg, "diffmean", "", pos)]
        out[ms[0].key] = ms
        ms = [diffmean_vector_method(kit, s, pos) for s in grid(cfg, "diffmean_vector", "", pos)]
        out[ms[0].key] = ms
    ms = [sae_method(kit, run, s, sae_resid) for s in cfg.grids["sae"]]
    out[ms[0].key] = ms
    return out


def extra_methods(bench: Any, kit: TopicKit, chosen: dict[str, Any], best_cocomix: str,
                   best_diffmean: str, tuned: dict[str, Any]) -> list:
    """Prompting and the controls, for one topic (a random-concept control for the best
    CoCoMix variant at its global strength and for each CoCoMix variant tuned per topic)."""
    from cocomix_lens.steering.diffmean import random_direction
    from cocomix_lens.steering.topic_methods import TopicMethod

    out = [TopicMethod("unsteered", "", kit.topic), TopicMethod("prompt_cue", "", kit.topic),
           TopicMethod("prompt_switch", "", kit.topic)]
    for cm in ([chosen[best_cocomix]["method"]] if best_cocomix in chosen else []) + [
            m for v, m in tuned.items() if v.startswith("cocomix/")]:
        out.append(random_control(bench, kit, cm))
    dm = chosen[best_diffmean]["method"]
    seed = bench.cfg.seed * 1009 + sum(map(ord, kit.topic))
    out.append(TopicMethod("random_direction", dm.variant, kit.topic, dm.strength, hook=dm.hook,
                           vector=tuple(float(x) for x in random_direction(
                               np.asarray(dm.vector), seed)), positions=dm.positions))
    return out




def random_control(bench: Any, kit: TopicKit, cm: Any):
    """The random-concept control of the CoCoMix method `cm` (`random_concepts`), in the row
    "random_concept/<its variant>"."""
    recipe = cm.extra.get("recipe")  # the fluent row's edit differs from topic to topic
    op, which, pos = (recipe or cm.variant.split("@")[0]).split("/")
    ids = random_concepts(bench.run, kit, cm, bench.cfg.seed)
    rc = cocomix_method(kit, op, which, pos, cm.strength, bench.run, ids=ids)
    extra = rc.extra if recipe is None else {**rc.extra, "recipe": recipe}
    return replace(rc, family="random_concept", variant=cm.variant, extra=extra)


def random_concepts(run: Any, kit: TopicKit, method: Any,
                    seed: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The random-concept control of a CoCoMix `method`: as many random live concepts to raise
    as it raises and, when it bans (set+ban), as many other random ones to ban as it bans, none
    of them the topic's: the same edit moved off the topic. (Until round 3 the control raised
    random concepts and banned none, so a set+ban method was compared with a weaker edit.)"""
    from cocomix_lens.steering.evaluate import live_concepts

    live = np.setdiff1d(live_concepts(run), kit.concepts.concepts)
    n_raise, n_ban = len(method.extra["concepts"]), len(method.extra["banned"])
    rng = np.random.default_rng([seed, sum(map(ord, kit.topic))])
    picked = rng.choice(live, min(n_raise + n_ban, live.size), replace=False)
    return (tuple(int(c) for c in picked[:n_raise]),
            tuple(int(c) for c in picked[n_raise:]))
