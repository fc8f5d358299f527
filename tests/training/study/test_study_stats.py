"""Verdict logic on planted numbers: clear effects are called, noise and single seeds are not."""

import math

import pytest

from training.study.stats import (
    FAILS,
    HOLDS,
    NOT_RUN,
    UNSURE,
    all_of,
    paired,
    share_saved,
    sign_test,
    tokens_to_reach,
)


def test_clear_consistent_gain_holds():
    p = paired([0.20, 0.21, 0.19], min_effect=0.01)
    assert p.verdict == HOLDS
    assert p.mean == pytest.approx(0.20)
    # t_{0.975, 2} = 4.303; std 0.01 -> half width 4.303 * 0.01 / sqrt(3)
    assert p.lo == pytest.approx(0.20 - 4.302653 * 0.01 / math.sqrt(3), abs=1e-6)


def test_clear_loss_does_not_hold():
    assert paired([-0.20, -0.21, -0.19], min_effect=0.01).verdict == FAILS


def test_tight_null_effect_does_not_hold():
    # a consistent but negligible difference: the interval lies below the minimal effect
    assert paired([0.001, 0.002, 0.0015, 0.001], min_effect=0.01).verdict == FAILS


def test_noisy_differences_are_inconclusive():
    assert paired([0.3, -0.2, 0.1], min_effect=0.01).verdict == UNSURE


def test_one_seed_is_inconclusive_however_large():
    p = paired([5.0])
    assert p.verdict == UNSURE and p.n == 1 and math.isnan(p.lo)


def test_two_seeds_need_a_very_consistent_effect():
    assert paired([0.10, 0.05]).verdict == UNSURE  # t_{0.975,1} = 12.7
    assert paired([0.100, 0.101]).verdict == HOLDS


def test_missing_runs_are_dropped():
    assert paired([0.2, None, float("nan"), 0.21, 0.19]).n == 3


def test_sign_test_p_values():
    assert sign_test(__import__("numpy").array([1.0, 2.0, 3.0])) == pytest.approx(0.25)
    assert sign_test(__import__("numpy").array([1.0, -1.0])) == pytest.approx(1.0)


def test_all_of_combines_comparisons():
    assert all_of([HOLDS, HOLDS]) == HOLDS
    assert all_of([HOLDS, FAILS]) == FAILS
    assert all_of([HOLDS, UNSURE]) == UNSURE
    assert all_of([HOLDS, NOT_RUN]) == NOT_RUN


def test_tokens_to_reach_interpolates_between_evaluations():
    tokens, losses = [100, 200, 300], [5.0, 4.0, 3.0]
    assert tokens_to_reach(tokens, losses, 3.5) == pytest.approx(250.0)
    assert tokens_to_reach(tokens, losses, 6.0) == 100.0
    assert tokens_to_reach(tokens, losses, 2.0) is None
    curve = {"tokens": tokens, "val_loss": losses}
    assert share_saved(curve, 3.5, 300) == pytest.approx(1 - 250 / 300)
    assert share_saved(curve, 2.0, 300) is None
