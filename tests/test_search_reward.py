"""The MnasNet reward, ACC x (LAT/T)^w, at and around the target, in both constraint modes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from latprof.errors import LatprofError, SearchError
from latprof.search import Reward


def test_soft_reward_is_the_papers_formula_on_both_sides_of_the_target():
    r = Reward.from_mode(75.0, "soft")
    assert (r.alpha, r.beta, r.mode) == (-0.07, -0.07, "soft")
    assert r(0.75, 75.0) == pytest.approx(0.75)  # at the target the reward is the accuracy
    assert r(0.75, 37.5) == pytest.approx(0.75 * 0.5 ** -0.07)  # faster: a small bonus
    assert r(0.75, 150.0) == pytest.approx(0.75 * 2.0 ** -0.07)  # slower: a small penalty
    # The paper's reading: twice the latency needs ~5% more accuracy to tie.
    assert r(0.75 * 2 ** 0.07, 150.0) == pytest.approx(r(0.75, 75.0))


def test_hard_reward_is_flat_under_the_target_and_steep_over_it():
    r = Reward.from_mode(75.0, "hard")
    assert (r.alpha, r.beta, r.mode) == (0.0, -1.0, "hard")
    assert r(0.8, 10.0) == r(0.8, 74.99) == r(0.8, 75.0) == pytest.approx(0.8)
    assert r(0.8, 75.0 * 1.1) == pytest.approx(0.8 / 1.1)
    assert r(0.8, 150.0) == pytest.approx(0.4)
    # The exponent switches exactly at T: just over it is already penalised, continuously.
    just_over = r(0.8, 75.0 + 1e-9)
    assert just_over < 0.8 and just_over == pytest.approx(0.8)


def test_alpha_and_beta_override_a_mode_and_make_it_custom():
    r = Reward.from_mode(20.0, "soft", beta=-0.5)
    assert (r.alpha, r.beta, r.mode) == (-0.07, -0.5, "custom")
    assert r(1.0, 40.0) == pytest.approx(2.0 ** -0.5)
    assert r(1.0, 10.0) == pytest.approx(0.5 ** -0.07)
    assert Reward.from_mode(20.0, "hard", alpha=0.0, beta=-1.0).mode == "hard"


def test_vectorised_rewards_match_the_scalar_formula():
    r = Reward.from_mode(50.0, "hard")
    acc = np.array([0.5, 0.6, 0.7, 0.8])
    lat = np.array([25.0, 50.0, 50.0001, 100.0])
    assert np.allclose(r.many(acc, lat), [r(a, t) for a, t in zip(acc, lat)])


@pytest.mark.parametrize("target", [0, -75, float("nan"), float("inf")])
def test_a_non_positive_or_non_finite_target_is_refused_with_the_fix(target):
    with pytest.raises(SearchError) as exc:
        Reward.from_mode(target, "soft")
    message = str(exc.value)
    assert "target latency" in message and "--target-ms" in message and "\n" not in message
    assert isinstance(exc.value, LatprofError)


def test_unknown_mode_and_bad_exponents_are_refused():
    with pytest.raises(SearchError, match="pass --reward auto, soft or hard"):
        Reward.from_mode(75, "medium")
    with pytest.raises(SearchError, match="--beta"):
        Reward.from_mode(75, "soft", beta=math.nan)


def test_latency_must_be_positive():
    r = Reward.from_mode(75, "soft")
    with pytest.raises(ValueError):
        r(0.7, 0.0)
    with pytest.raises(ValueError):
        r.many(np.array([0.7]), np.array([-1.0]))


def test_auto_reward_is_hard_for_a_builtin_proxy_and_soft_for_the_users_accuracy():
    from latprof.search import SearchConfig

    assert SearchConfig(target_ms=75).reward_mode == "hard"
    assert SearchConfig(target_ms=75).make_reward().beta == -1.0
    assert SearchConfig(target_ms=75, accuracy="proxy-train").reward_mode == "hard"
    assert SearchConfig(target_ms=75, accuracy="python:mod:f").reward_mode == "soft"
    assert SearchConfig(target_ms=75, reward="soft").make_reward().alpha == -0.07
