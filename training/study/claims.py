"""The claims (a)-(h) of issue 14 as pure functions of the study's numbers.

Input (`Results`, plain JSON):
    curves    {arm: {seed: {"tokens": [...], "val_loss": [...]}}}
    budget    training tokens per run
    probe     {seed: {"ntp": accuracy, "cocomix": accuracy, ...}}     (claim h; world only)
    steering  {seed: {"steered": x, "control": y}}                   (claim f)
Each claim returns a dict: id, title, verdict, test, comparisons (each a `stats.Paired` with
what it compares) and numbers (mean ± std over seeds).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from training.study.stats import NOT_RUN, all_of, mean_std, paired, share_saved

Results = dict[str, Any]
MIN_LOSS = 0.01
"""Smallest val-loss difference (nats) that counts as an effect."""
MIN_PROBE = 0.01
"""Smallest probe-accuracy difference that counts as an effect."""


def final_losses(res: Results, arm: str) -> dict[int, float]:
    """seed -> final val loss of `arm`."""
    return {int(s): c["val_loss"][-1] for s, c in res["curves"].get(arm, {}).items()
            if c["val_loss"]}


def loss_gap(res: Results, better: str, worse: str) -> tuple[list[float], list[int]]:
    """Per shared seed, val_loss(worse) - val_loss(better): > 0 when `better` is."""
    a, b = final_losses(res, better), final_losses(res, worse)
    seeds = sorted(set(a) & set(b))
    return [b[s] - a[s] for s in seeds], seeds


def compare(res: Results, better: str, worse: str) -> dict[str, Any]:
    """The paired test of `better` beating `worse` on final val loss."""
    if not final_losses(res, better) or not final_losses(res, worse):
        return {"better": better, "worse": worse, "verdict": NOT_RUN,
                "reason": f"arm {better if not final_losses(res, better) else worse} not run"}
    diffs, seeds = loss_gap(res, better, worse)
    p = paired(diffs, MIN_LOSS)
    return {"better": better, "worse": worse, "metric": "final val loss gap (nats)",
            "seeds": seeds, "diffs": diffs, **p.to_dict()}


def savings(res: Results, fast: str, reference: str) -> dict[str, Any]:
    """Share of the budget `fast` saves reaching `reference`'s final val loss, per seed
    (None: not reached within the budget)."""
    ref = final_losses(res, reference)
    curves = res["curves"].get(fast, {})
    per_seed = {int(s): share_saved(c, ref[int(s)], res["budget"])
                for s, c in curves.items() if int(s) in ref}
    mean, std = mean_std(list(per_seed.values()))
    return {"fast": fast, "reference": reference, "per_seed": per_seed,
            "reached": sum(v is not None for v in per_seed.values()),
            "mean": mean, "std": std}


PAPER = {
    "a": "1.38B, 200B tokens: 21.5 % fewer tokens to NTP's final OpenWebText perplexity",
    "b": "69M: attribution labels 17.5 % more token-efficient than activation labels",
    "c": "69M: interleaving beats adding",
    "d": "69M: concept prediction alone or mixing alone is weak; both together best",
    "e": "KD gains are smaller than CoCoMix's and fade once the student outgrows the teacher",
    "f": "examples only, no success metric",
    "g": "not studied: the paper's text uses the pre-activation, its code the post-TopK one",
    "h": "not studied",
}
"""What the paper (arXiv 2502.08524) reports for each claim."""


def _claim(cid: str, title: str, comparisons: list[dict[str, Any]],
           **numbers: Any) -> dict[str, Any]:
    verdict = all_of([c["verdict"] for c in comparisons])
    return {"id": cid, "title": title, "verdict": verdict, "paper": PAPER[cid],
            "test": "paired t-interval over seeds (95 %) on each comparison; holds if every "
                    "interval is above 0, does not hold if one lies below the minimal effect",
            "comparisons": comparisons, "numbers": numbers}


def _losses(res: Results, arms: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for arm in arms:
        mean, std = mean_std(list(final_losses(res, arm).values()))
        out[arm] = {"mean": mean, "std": std}
    return out


# ---- the claims ----------------------------------------------------------------------------
def claim_a(res: Results) -> dict[str, Any]:
    return _claim("a", "CoCoMix reaches NTP's final val loss with fewer tokens",
                  [compare(res, "cocomix", "ntp")],
                  token_share_saved=savings(res, "cocomix", "ntp"),
                  final_val_loss=_losses(res, ["ntp", "cocomix"]))


def claim_b(res: Results) -> dict[str, Any]:
    return _claim("b", "attribution labels train better than activation labels",
                  [compare(res, "cocomix", "cocomix_activation")],
                  token_share_saved=savings(res, "cocomix", "cocomix_activation"),
                  final_val_loss=_losses(res, ["cocomix", "cocomix_activation"]))


def claim_c(res: Results) -> dict[str, Any]:
    return _claim("c", "interleaving concepts beats adding them to the hidden state",
                  [compare(res, "cocomix", "add")],
                  final_val_loss=_losses(res, ["cocomix", "add"]))


def claim_d(res: Results) -> dict[str, Any]:
    return _claim("d", "the full method beats concept prediction alone and mixing alone",
                  [compare(res, "cocomix", "concept_only"), compare(res, "cocomix", "mix_only")],
                  final_val_loss=_losses(res, ["cocomix", "concept_only", "mix_only"]))


def claim_e(res: Results) -> dict[str, Any]:
    return _claim("e", "CoCoMix beats knowledge distillation from the same teacher",
                  [compare(res, "cocomix", "kd")],
                  final_val_loss=_losses(res, ["cocomix", "kd", "ntp"]))


SIGNS = ("cocomix", "cocomix_preact", "cocomix_abs", "cocomix_neg")


def claim_g(res: Results) -> dict[str, Any]:
    ran = [a for a in SIGNS if final_losses(res, a)]
    losses = _losses(res, ran)
    best = min(ran, key=lambda a: losses[a]["mean"]) if ran else None
    return _claim("g", "signed attribution (the official code's) trains best of the signs",
                  [compare(res, "cocomix", o) for o in SIGNS[1:]],
                  final_val_loss=losses, best_by_mean=best)


def claim_f(res: Results) -> dict[str, Any]:
    st = res.get("steering") or {}
    if not st:
        return {"id": "f", "title": "steering a concept beats the random-concept control",
                "verdict": NOT_RUN, "paper": PAPER["f"], "test": "", "comparisons": [],
                "numbers": {"reason": "steering not measured (--steer-samples 0)"}}
    seeds = sorted(st, key=int)
    diffs = [st[s]["steered"] - st[s]["control"] for s in seeds]
    p = paired(diffs, 0.0)
    comp = {"better": "steered", "worse": "random-concept control",
            "metric": st[seeds[0]].get("metric", "success"), "seeds": [int(s) for s in seeds],
            "diffs": diffs, **p.to_dict()}
    return _claim("f", "steering a concept beats the random-concept control", [comp],
                  steered=mean_std([st[s]["steered"] for s in seeds]),
                  control=mean_std([st[s]["control"] for s in seeds]),
                  unsteered=mean_std([st[s].get("unsteered") for s in seeds]),
                  settings=st[seeds[0]].get("settings"))


def claim_h(res: Results) -> dict[str, Any]:
    pr = res.get("probe") or {}
    title = "CoCoMix's student encodes the world's variables better than NTP's (linear probe)"
    if not pr:
        return {"id": "h", "title": title, "verdict": NOT_RUN, "paper": PAPER["h"], "test": "",
                "comparisons": [],
                "numbers": {"reason": "no ground truth (not a world corpus) or no ntp/cocomix"}}
    seeds = sorted(pr, key=int)
    diffs = [pr[s]["cocomix"] - pr[s]["ntp"] for s in seeds]
    p = paired(diffs, MIN_PROBE)
    comp = {"better": "cocomix", "worse": "ntp", "metric": "mean probe accuracy",
            "seeds": [int(s) for s in seeds], "diffs": diffs, **p.to_dict()}
    return _claim("h", title, [comp],
                  ntp=mean_std([pr[s]["ntp"] for s in seeds]),
                  cocomix=mean_std([pr[s]["cocomix"] for s in seeds]),
                  per_variable={s: pr[s].get("per_variable") for s in seeds},
                  layer=pr[seeds[0]].get("hook"))


CLAIMS: dict[str, Callable[[Results], dict[str, Any]]] = {
    "a": claim_a, "b": claim_b, "c": claim_c, "d": claim_d, "e": claim_e, "f": claim_f,
    "g": claim_g, "h": claim_h,
}
"""Claim id -> its verdict function, in report order."""


def judge(res: Results) -> list[dict[str, Any]]:
    """Every claim's verdict and numbers."""
    return [fn(res) for fn in CLAIMS.values()]
