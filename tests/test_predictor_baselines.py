"""The metrics module and the baselines latprof must beat, on synthetic data whose law is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from latprof.errors import PredictorError
from latprof.predictor import baselines, error_summary
from latprof.space import get_space
from latprof.space._nasbench201 import CELLS_PER_STAGE, OPS

KEYS = {"n", "mape", "within_5", "within_10", "within_15", "rmse_ms", "max_abs_rel", "spearman_rho", "kendall_tau"}


# ---------------------------------------------------------------- error_summary

def test_error_summary_reads_back_the_errors_it_was_given():
    rng = np.random.default_rng(0)
    measured = rng.uniform(1, 50, 200)
    rel = rng.uniform(-0.2, 0.2, 200)
    got = error_summary(measured * (1 + rel), measured)
    assert set(got) == KEYS and got["n"] == 200
    assert got["mape"] == pytest.approx(np.mean(np.abs(rel)))
    assert got["max_abs_rel"] == pytest.approx(np.max(np.abs(rel)))
    for pct in (5, 10, 15):
        assert got[f"within_{pct}"] == pytest.approx(np.mean(np.abs(rel) <= pct / 100))
    assert got["rmse_ms"] == pytest.approx(np.sqrt(np.mean((measured * rel) ** 2)))


def test_error_summary_ranks_monotone_and_reversed_predictions():
    measured = np.linspace(1, 10, 30)
    same_order = error_summary(np.exp(measured), measured)
    assert same_order["spearman_rho"] == pytest.approx(1) and same_order["kendall_tau"] == pytest.approx(1)
    reversed_order = error_summary(-measured, measured)
    assert reversed_order["spearman_rho"] == pytest.approx(-1) and reversed_order["kendall_tau"] == pytest.approx(-1)


def test_error_summary_drops_rows_under_min_ms_and_says_nan_when_ranks_mean_nothing():
    measured = np.array([0.005, 0.004, 2.0, 4.0, 8.0])
    pred = np.array([3.0, 3.0, 2.0, 4.0, 8.0])  # the two ~0 ms rows are 600x off
    assert error_summary(pred, measured, min_ms=0.5)["mape"] == 0
    assert error_summary(pred, measured, min_ms=0.5)["n"] == 3
    assert error_summary(pred, measured)["mape"] > 100
    two = error_summary([1.0, 2.0], [1.0, 2.0])
    assert math.isnan(two["spearman_rho"]) and math.isnan(two["kendall_tau"]) and two["mape"] == 0
    constant = error_summary(np.ones(5), np.arange(1.0, 6.0))
    assert math.isnan(constant["spearman_rho"])
    empty = error_summary([1.0], [0.1], min_ms=0.5)
    assert empty["n"] == 0 and all(math.isnan(v) for k, v in empty.items() if k != "n")
    with pytest.raises(PredictorError, match="one prediction per"):
        error_summary([1.0, 2.0], [1.0, 2.0, 3.0])


# ---------------------------------------------------------------- FLOPs

def test_fit_flops_recovers_a_linear_law():
    macs = np.random.default_rng(1).uniform(50e6, 600e6, 40)
    model = baselines.fit_flops(macs, 0.12 * macs / 1e6 + 3.0)  # 120 ms per GMAC + 3 ms
    assert model.ms_per_gmac == pytest.approx(120.0, rel=1e-6) and model.intercept_ms == pytest.approx(3.0, rel=1e-6)
    assert np.allclose(model.predict([1e9]), 123.0)


def test_fit_flops_is_non_negative():
    macs = np.linspace(100e6, 500e6, 20)
    model = baselines.fit_flops(macs, 0.2 * macs / 1e6 - 10.0)  # a law with a negative intercept
    assert model.intercept_ms == 0.0 and model.ms_per_gmac > 0


def test_fit_flops_recovers_runtime_factors():
    rng = np.random.default_rng(2)
    macs = rng.uniform(50e6, 600e6, 30)
    runtimes = ["tflite 2.4"] * 20 + ["tflite 1.x"] * 10
    factor = np.where(np.array(runtimes) == "tflite 1.x", 1.6, 1.0)
    y = (0.08 * macs / 1e6 + 2.0) * factor
    model = baselines.fit_flops(macs, y, runtimes)
    assert model.runtime == "tflite 2.4"  # the most common
    # the weak "factor is 1" prior pulls a factor slightly toward 1
    assert model.runtime_factors["tflite 1.x"] == pytest.approx(1.6, rel=5e-3)
    assert np.allclose(model.predict(macs, runtimes), y, rtol=5e-3)
    assert np.allclose(model.predict(macs), y / factor, rtol=5e-3)  # at the target runtime
    other = baselines.fit_flops(macs, y, runtimes, runtime="tflite 1.x")
    assert other.runtime == "tflite 1.x"
    assert other.runtime_factors["tflite 2.4"] == pytest.approx(1 / 1.6, rel=5e-3)


def test_relative_fits_refuse_rows_timed_at_zero():
    with pytest.raises(PredictorError, match="> 0 ms"):
        baselines.fit_flops([1e8, 2e8], [1.0, 0.0])
    with pytest.raises(PredictorError, match="> 0 ms"):
        baselines.fit_op_counts([[1, 2], [2, 1]], [1.0, -1.0])


# ---------------------------------------------------------------- operator counts

def test_fit_op_counts_recovers_one_cost_per_kind():
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 30, (25, 4)).astype(float)
    costs, intercept = np.array([0.3, 0.05, 1.2, 0.0]), 2.5
    model = baselines.fit_op_counts(counts, intercept + counts @ costs)
    assert model.intercept_ms == pytest.approx(intercept, abs=1e-6)
    assert np.allclose(model.costs_ms, costs, atol=1e-6)
    assert np.allclose(model.predict(counts[:3]), intercept + counts[:3] @ costs)


def test_fit_op_counts_keeps_every_cost_non_negative():
    rng = np.random.default_rng(4)
    counts = rng.integers(0, 30, (25, 3)).astype(float)
    y = 40.0 + counts @ np.array([1.0, -0.5, 0.4])  # one kind "saves" time: not a cost
    model = baselines.fit_op_counts(counts, y)
    assert model.intercept_ms >= 0 and np.all(model.costs_ms >= 0)
    with pytest.raises(PredictorError, match="same op_counts"):
        model.predict(counts[:, :2])


def test_op_counts_follow_the_space_form():
    spaces = {form: get_space(form) for form in ("nasbench201", "nasbench201-pruned")}
    cells = 3 * CELLS_PER_STAGE
    conv3 = OPS.index("nor_conv_3x3")
    base = [OPS.index("skip_connect")] * 6
    one_more = list(base)
    one_more[5] = conv3  # edge 2->3 becomes a 3x3 conv
    dead_end = list(one_more)
    dead_end[1] = conv3  # edge 0->2 is a 3x3 conv, but node 2 feeds only the 2->3 edge: still live
    dead_end[5] = OPS.index("none")  # ... now node 2 reaches nothing: edges 0->2 and 1->2 are dead ends
    disconnected = [OPS.index("none")] * 6
    for form, space in spaces.items():
        archs = [space.from_tokens(t) for t in (base, one_more, dead_end, disconnected)]
        X, names = baselines.op_counts(space, archs)
        assert names == baselines.FAMILIES and X.shape == (4, len(names))
        conv = names.index("conv")
        assert X[1, conv] - X[0, conv] == cells
        apart = np.vstack([baselines.op_counts(space, [a])[0] for a in archs])
        assert np.array_equal(apart, X)  # the same columns whichever architectures are counted together
        if form == "nasbench201":
            assert X[2, conv] - X[0, conv] == cells  # the dead-end conv runs
        else:
            assert X[2, conv] == X[0, conv]  # pruned away
            assert not X[3].any()  # nothing runs


# ---------------------------------------------------------------- one-hot ridge

N_CHOICES = [5] * 6


def _additive_law(rng: np.random.Generator):
    """A cell space's additive law: 5 ms plus one effect per decision's choice."""
    effects = [rng.uniform(0, 3, k) for k in N_CHOICES]

    def law(tokens: np.ndarray) -> np.ndarray:
        return 5.0 + sum(effects[j][tokens[:, j]] for j in range(len(N_CHOICES)))
    return law


def _tokens(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.column_stack([rng.integers(0, k, n) for k in N_CHOICES])


def test_fit_onehot_recovers_an_additive_law():
    rng = np.random.default_rng(5)
    law, tokens, held_out = _additive_law(rng), _tokens(rng, 200), _tokens(rng, 50)
    model = baselines.fit_onehot(tokens, N_CHOICES, law(tokens))
    assert model.penalty == min(baselines.ONEHOT_PENALTIES)
    assert np.allclose(model.predict(held_out), law(held_out), atol=0.02)


def test_fit_onehot_leave_one_out_picks_a_finite_penalty_on_a_noisy_law():
    rng = np.random.default_rng(7)
    law, tokens, held_out = _additive_law(rng), _tokens(rng, 40), _tokens(rng, 500)
    y = law(tokens) + rng.normal(0, 1.0, len(tokens))
    model = baselines.fit_onehot(tokens, N_CHOICES, y)
    grid = baselines.ONEHOT_PENALTIES
    assert min(grid) < model.penalty < max(grid)
    unpenalised = baselines.OneHotModel(*_least_squares(tokens, y), tuple(N_CHOICES), 0.0)
    error = {name: np.mean((m.predict(held_out) - law(held_out)) ** 2) for name, m in
             (("ridge", model), ("least squares", unpenalised))}
    assert error["ridge"] < error["least squares"]
    with pytest.raises(PredictorError, match="decisions"):
        model.predict(tokens[:, :5])


def _least_squares(tokens: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    X = np.concatenate([np.eye(k)[tokens[:, j]] for j, k in enumerate(N_CHOICES)], axis=1)
    coef = np.linalg.lstsq(np.column_stack([np.ones(len(y)), X]), y, rcond=None)[0]
    return float(coef[0]), coef[1:]
