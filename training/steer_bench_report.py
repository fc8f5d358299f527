"""What `cocomix-lens steer-bench` makes of its cells (training/steer_bench.py): strengths chosen
on the selection half (for all topics together and per topic), the results JSON, the 5x goal
per topic, and the markdown table."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import numpy as np

from cocomix_lens.tables import markdown_table

CELLS = "cells.jsonl"  # every scored cell, appended as it is scored (the resume cache)


def grammar_holds(cell: Any, floor: float) -> bool:
    """Whether `cell`'s grammatical share clears `floor` by one standard error of its mean."""
    g = np.asarray(cell.values["fluency"], dtype=np.float64)
    g = g[~np.isnan(g)]
    if g.size == 0:
        return False
    se = float(g.std(ddof=1) / np.sqrt(g.size)) if g.size > 1 else 0.0
    return float(g.mean()) - se >= floor


def _floor(bench: Any, topic: str, half: str) -> float:
    from cocomix_lens.steering.topic_methods import TopicMethod

    base = bench.cell(TopicMethod("unsteered", "", topic), half)
    return float(np.nanmean(base.values["fluency"])) - bench.cfg.max_grammar_drop


def _hm(cell: Any) -> float:
    return float(np.mean(cell.harmonic))


def _grammar(cell: Any) -> float:
    return float(np.nanmean(cell.values["fluency"]))


def grammar_bounded(bench: Any, groups: dict[Any, tuple[str, list]]) -> dict[Any, Any]:
    """group -> the method of (topic, methods) with the best harmonic mean on the selection
    half among those that keep grammar within `max_grammar_drop` of unsteered there, checked
    on more continuations. The selection cells hold 10 continuations, and the strongest edit
    that clears a bound on so few is the one most likely to have cleared it by luck (choosing
    on them alone, the JumpReLU demo run's per-topic picks held grammar within 10 points on
    the selection half and lost 12 on the report half). So the methods whose selection mean
    clears the bound are taken best harmonic mean first, `confirm_top` at a time, for at most
    `confirm_rounds` rounds: each is scored again on the same openings with
    `confirm_samples` continuations ("confirm" cells), and the first round in which some
    clear the bound by one standard error (`grammar_holds`) gives the best of those. A group
    that none clears gets its gentlest method: the smallest |strength| of a one-variant grid
    (its grammar on the selection cells says little when an edit, like a ban, costs grammar at
    every strength), else the most grammatical on the selection half. The report half is never
    read."""
    from cocomix_lens.steering.topic_methods import TopicMethod

    cfg, queue, gentlest = bench.cfg, {}, {}
    for g, (topic, ms) in groups.items():
        floor = _floor(bench, topic, "selection")
        cells = [bench.cell(m, "selection") for m in ms]
        ok = [i for i, c in enumerate(cells) if _grammar(c) >= floor]
        queue[g] = [ms[i] for i in sorted(ok, key=lambda i: -_hm(cells[i]))]
        gentlest[g] = _gentlest(ms, cells)
    topics = sorted({topic for topic, _ in groups.values()})
    bench.fill([(TopicMethod("unsteered", "", t), "confirm") for t in topics])
    out: dict[Any, Any] = {}
    for r in range(cfg.confirm_rounds):
        batch = {g: q[r * cfg.confirm_top:(r + 1) * cfg.confirm_top]
                 for g, q in queue.items() if g not in out}
        batch = {g: ms for g, ms in batch.items() if ms}
        if not batch:
            break
        bench.fill([(m, "confirm") for ms in batch.values() for m in ms])
        for g, ms in batch.items():
            floor = _floor(bench, groups[g][0], "confirm")
            cells = [bench.cell(m, "confirm") for m in ms]
            ok = [i for i, c in enumerate(cells) if grammar_holds(c, floor)]
            if ok:
                out[g] = ms[max(ok, key=lambda j: _hm(cells[j]))]
    return {g: out.get(g, gentlest[g]) for g in groups}


def _gentlest(ms: list, cells: list) -> Any:
    if len({m.variant for m in ms}) == 1 and all(m.strength is not None for m in ms):
        return min(ms, key=lambda m: abs(m.strength))
    return ms[max(range(len(ms)), key=lambda i: _grammar(cells[i]))]


def tune_per_topic(bench: Any, cands: dict[str, dict[str, list]],
                   variants: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """topic -> variant -> the variant at its own strength for this topic, renamed
    "<variant>@topic": its grid's `grammar_bounded` choice."""
    groups = {(t, v): (t, variants_of[v]) for t, variants_of in cands.items()
              for v in variants if variants_of.get(v)}
    picks = grammar_bounded(bench, groups)
    out: dict[str, dict[str, Any]] = {t: {} for t in cands}
    for (t, v), m in picks.items():
        out[t][v] = replace(m, variant=m.variant + "@topic")
    return out


FLUENT = "cocomix/fluent"
"""The row of CoCoMix's recipe and strength chosen per topic under the grammar bound."""


def tune_fluent(bench: Any, cands: dict[str, dict[str, list]]) -> dict[str, Any]:
    """topic -> CoCoMix's best edit of the topic that keeps grammar: the `grammar_bounded`
    choice over every CoCoMix variant (op, concept set, positions) and strength. In the row
    `FLUENT`, the variant it came from in `extra["recipe"]`."""
    groups = {t: (t, [m for v, vms in sorted(variants_of.items()) if v.startswith("cocomix/")
                      for m in vms]) for t, variants_of in cands.items()}
    return {t: replace(m, variant=FLUENT.split("/", 1)[1],
                       extra={**m.extra, "recipe": m.variant})
            for t, m in grammar_bounded(bench, groups).items()}


def recommend(bench: Any, chosen: dict[str, dict[str, Any]], tuned: dict[str, dict[str, Any]],
              variant: str) -> dict[str, Any]:
    """What `toward` gives by default, decided on the selection half: `variant` at its one
    strength for every topic or at the grammar-bounded strength of each topic, whichever has
    the better mean selection-half harmonic mean over topics."""
    one = float(np.mean([chosen[t][variant]["selection_hm"] for t in chosen]))
    per = float(np.mean([_hm(bench.cell(replace(tuned[t][variant], variant=variant.split(
        "/", 1)[1]), "selection")) for t in chosen]))  # the same edit's cell, not a new one
    return {"variant": variant, "per_topic": per > one,
            "selection_hm": {"one_strength": one, "per_topic": per}}


def choose_strengths(bench: Any, cands: dict[str, dict[str, list]]) -> dict[str, Any]:
    """topic -> variant -> {"method", "selection_hm", "grid"}: each variant at the strength
    with the best selection-half harmonic mean, averaged over topics (one strength for every
    topic: the setting a user gets by default) or per topic (`per_topic_strength`); ties go
    to the first (smallest) grid value."""
    grid_hm: dict[str, dict[str, list[float]]] = {}
    for t, variants in cands.items():
        for variant, ms in variants.items():
            grid_hm.setdefault(variant, {})[t] = [
                float(np.mean(bench.cell(m, "selection").harmonic)) for m in ms]
    chosen: dict[str, Any] = {t: {} for t in cands}
    for variant, per_topic in grid_hm.items():
        pooled = np.mean(list(per_topic.values()), axis=0)
        for t, hms in per_topic.items():
            i = int(np.argmax(hms if bench.cfg.per_topic_strength else pooled))
            ms = cands[t][variant]
            chosen[t][variant] = {"method": ms[i], "selection_hm": hms[i],
                                  "grid": [[m.strength, h] for m, h in zip(ms, hms)]}
    return chosen


def ranked_variants(chosen: dict[str, dict[str, Any]], prefix: str) -> list[str]:
    """The variants of a family that every topic has (a topic with one concept has no
    concept-set variants), best selection-half harmonic mean over topics first."""
    variants = {v for c in chosen.values() for v in c if v.startswith(prefix)}
    variants = {v for v in variants if all(v in c for c in chosen.values())} or variants
    return sorted(sorted(variants), key=lambda v: -np.mean(
        [chosen[t][v]["selection_hm"] for t in chosen if v in chosen[t]]))


def best_variant(chosen: dict[str, dict[str, Any]], prefix: str) -> str:
    """The variant of a family with the best selection-half harmonic mean over topics."""
    return ranked_variants(chosen, prefix)[0]


def results_json(bench: Any, cfg: Any, kits: dict, chosen: dict, report: dict,
                 best_cocomix: str, best_diffmean: str, tuned: dict,
                 wall: float) -> dict[str, Any]:
    from cocomix_lens.steering.topic_eval import summarise

    rows = {}
    for key, cells in report.items():
        rows[key] = {"summary": summarise(cells, cfg.n_boot, cfg.seed),
                     "cells": [c.to_dict() for c in cells]}
    return {
        "run": str(bench.run.path), "run_fingerprint": bench.fingerprint, "config": asdict(cfg),
        "sampling": asdict(bench.sampling), "wall_s": round(wall, 1),
        "topics": bench.topics,
        "prompts": {t: {"selection": [o.__dict__ for o in s.selection],
                        "report": [o.__dict__ for o in s.report]}
                    for t, s in bench.splits.items()},
        "topic_concepts": {t: k.concepts.to_dict() for t, k in kits.items()},
        "sae_concepts": {t: k.sae_concept for t, k in kits.items()},
        "selection": {t: {v: {"strength": c["method"].strength,
                              "selection_hm": c["selection_hm"], "grid": c["grid"]}
                          for v, c in ch.items()} for t, ch in chosen.items()},
        "best": {"cocomix": best_cocomix, "diffmean": best_diffmean},
        "rows": rows,
        "goals": goals(rows, best_cocomix, bench.topics),
        "goals_per_topic_strength": goals(rows, best_cocomix + "@topic", bench.topics),
        "goals_fluent": goals(rows, FLUENT, bench.topics),
        # every CoCoMix variant tuned per topic, for the record (the headline figures above
        # are the variant chosen on the selection half, not the best of these on the report)
        "goals_tuned": {k: goals(rows, k, bench.topics)["passed"] for k in sorted(rows)
                        if k.startswith("cocomix/") and k.endswith("@topic")},
        "per_topic_strength": {t: {v: m.strength for v, m in tv.items()}
                               for t, tv in tuned.items()},
        "fluent": {t: {"recipe": tv[FLUENT].extra["recipe"], "strength": tv[FLUENT].strength}
                   for t, tv in tuned.items() if FLUENT in tv},
        "cells": {"computed": bench.computed, "total": len(bench.cells),
                  "workers": cfg.workers},
    }


def goals(rows: dict[str, Any], best_cocomix: str, topics: list[str]) -> dict[str, Any]:
    """Per topic: CoCoMix's best on-topic share vs 5x the random-concept control and 5x
    unsteered, grammar within 10 points of unsteered."""
    def per_topic(key: str, score: str) -> dict[str, float]:
        return rows[key]["summary"][score]["per_topic"] if key in rows else {}

    best = per_topic(best_cocomix, "concept")
    ctl, base = per_topic("random_concept/" + best_cocomix.split("/", 1)[1], "concept"), \
        per_topic("unsteered", "concept")
    g_best, g_base = per_topic(best_cocomix, "fluency"), per_topic("unsteered", "fluency")
    out = {}
    for t in topics:
        if t not in best:
            continue
        ok = (best[t] >= 5 * ctl.get(t, 0.0) and best[t] >= 5 * base.get(t, 0.0)
              and best[t] > 0 and g_best[t] >= g_base.get(t, 0.0) - 0.10)
        out[t] = {"on_topic": best[t], "control": ctl.get(t), "unsteered": base.get(t),
                  "grammar": g_best[t], "grammar_unsteered": g_base.get(t), "pass": bool(ok)}
    return {"method": best_cocomix, "per_topic": out,
            "passed": sum(v["pass"] for v in out.values()), "of": len(out)}


def results_markdown(results: dict[str, Any]) -> str:
    """The results as a markdown table (`topic_eval.leaderboard`), best harmonic mean first."""
    from cocomix_lens.steering.topic_eval import leaderboard

    header, rows = leaderboard(results)
    lines = markdown_table(header, rows).splitlines()
    g, gt = results["goals"], results["goals_per_topic_strength"]
    cfg, sm = results["config"], results["sampling"]
    return "\n".join([
        f"# Steering benchmark on `{results['run']}`", "",
        f"{len(results['topics'])} topics; per topic {cfg['n_prompts'] // 2} held-out openings "
        f"of other topics (report half) x {cfg['report_samples']} continuations of "
        f"{sm['max_new_tokens']} tokens (temperature {sm['temperature']}, top-p "
        f"{sm['top_p']}); each method's strength chosen "
        f"{'per topic' if cfg['per_topic_strength'] else 'for all topics together'} on the "
        f"other {cfg['n_prompts'] - cfg['n_prompts'] // 2} openings per topic (selection "
        f"half, {cfg['select_samples']} continuation each). Scores are shares of the "
        "continuation's sentences (world oracle); harmonic = per-continuation harmonic mean of "
        "concept, fluency and relevance, 0 if any is 0 (AxBench). 95 % bootstrap CIs over "
        f"prompts. This invocation: {results['wall_s']:.0f} s wall, "
        f"{results['cells']['computed']} of {results['cells']['total']} cells generated "
        f"({results['cells']['workers']} worker(s); the rest read back from {CELLS}).", "",
        *lines, "",
        f"5x goal ({g['method']}: on-topic >= 5x random-concept control and >= 5x unsteered, "
        f"grammar within 10 points of unsteered): {g['passed']} of {g['of']} topics; with its "
        f"strength chosen per topic ({gt['method']}, grammar-bounded on the selection half): "
        f"{gt['passed']} of {gt['of']}." + _tuned_line(results) + _fluent_line(results), ""])


def _fluent_line(results: dict[str, Any]) -> str:
    g = results.get("goals_fluent")
    if not g:
        return ""
    return (f" CoCoMix's recipe and strength chosen per topic, keeping grammar on the selection "
            f"half ({g['method']}): {g['passed']} of {g['of']}.")


def _tuned_line(results: dict[str, Any]) -> str:
    tuned = results.get("goals_tuned", {})
    if not tuned:
        return ""
    return " Every CoCoMix variant tuned per topic: " + "; ".join(
        f"{k} {n} of {results['goals']['of']}" for k, n in tuned.items()) + "."
