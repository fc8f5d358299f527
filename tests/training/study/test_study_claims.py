"""Claims (a)-(h) on planted curves and measurements: a planted win is called holds, a
planted loss does not hold, and the numbers are the planted ones."""

import pytest

from training.study.claims import CLAIMS, judge
from training.study.stats import FAILS, HOLDS, NOT_RUN

TOKENS = [1000, 2000, 3000, 4000]
SEEDS = [0, 1, 2]


def curve(end: float, seed: int) -> dict:
    """A falling curve ending at `end` (+ a tiny per-seed jitter)."""
    jitter = 0.001 * seed
    return {"tokens": TOKENS, "val_loss": [end + 1.5 + jitter, end + 0.8 + jitter,
                                           end + 0.3 + jitter, end + jitter]}


def results(ends: dict[str, float], **extra) -> dict:
    return {"curves": {arm: {s: curve(e, s) for s in SEEDS} for arm, e in ends.items()},
            "budget": 4000, **extra}


def by_id(res: dict) -> dict:
    return {c["id"]: c for c in judge(res)}


ALL_BETTER = {"ntp": 4.5, "cocomix": 4.0, "kd": 4.4, "pause": 4.6, "cocomix_activation": 4.3,
              "cocomix_preact": 4.2, "cocomix_abs": 4.2, "cocomix_neg": 4.3, "add": 4.35,
              "concept_only": 4.45, "mix_only": 4.5}


def test_cocomix_clearly_better_everywhere_holds():
    claims = by_id(results(ALL_BETTER))
    for cid in "abcdeg":
        assert claims[cid]["verdict"] == HOLDS, cid
    a = claims["a"]
    assert a["comparisons"][0]["mean"] == pytest.approx(0.5)
    # cocomix reaches ntp's 4.5 between 3000 (4.3) and 4000 (4.0) tokens: at 3000 + 1000 *
    # (4.3 - 4.5 ...) -> the curve crosses 4.5 between 2000 (4.8) and 3000 (4.3)
    saved = a["numbers"]["token_share_saved"]
    assert saved["per_seed"][0] == pytest.approx(1 - (2000 + 1000 * (4.8 - 4.5) / 0.5) / 4000)
    assert saved["reached"] == 3


def test_cocomix_clearly_worse_does_not_hold():
    worse = {arm: 4.0 for arm in ALL_BETTER} | {"cocomix": 4.5}
    claims = by_id(results(worse))
    for cid in "abcdeg":
        assert claims[cid]["verdict"] == FAILS, cid
    assert claims["a"]["numbers"]["token_share_saved"]["reached"] == 0


def test_one_failing_ablation_fails_claim_d():
    ends = dict(ALL_BETTER, mix_only=3.9)
    assert by_id(results(ends))["d"]["verdict"] == FAILS


def test_missing_arms_are_not_run():
    claims = by_id(results({"ntp": 4.5, "cocomix": 4.0}))
    assert claims["a"]["verdict"] == HOLDS
    for cid in "bcdefgh":
        assert claims[cid]["verdict"] == NOT_RUN, cid


def test_steering_and_probe_claims():
    steering = {s: {"steered": 0.5 + 0.01 * s, "control": 0.1, "unsteered": 0.1} for s in SEEDS}
    probe = {s: {"ntp": 0.60, "cocomix": 0.70 + 0.001 * s} for s in SEEDS}
    claims = by_id(results(ALL_BETTER, steering=steering, probe=probe))
    assert claims["f"]["verdict"] == HOLDS
    assert claims["f"]["comparisons"][0]["mean"] == pytest.approx(0.41)
    assert claims["h"]["verdict"] == HOLDS
    flat = {s: {"steered": 0.1, "control": 0.3 + 0.001 * s} for s in SEEDS}
    same = {s: {"ntp": 0.7, "cocomix": 0.7 + 0.0001 * s} for s in SEEDS}
    claims = by_id(results(ALL_BETTER, steering=flat, probe=same))
    assert claims["f"]["verdict"] == FAILS
    assert claims["h"]["verdict"] == FAILS


def test_every_claim_of_the_issue_is_judged():
    assert list(CLAIMS) == list("abcdefgh")
