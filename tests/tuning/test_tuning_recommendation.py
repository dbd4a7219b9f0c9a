import math

import numpy as np
import pytest
from scipy import stats
from tuning_rows import paired_rows

from kreg import tuning
from kreg.tuning import recommendation


@pytest.mark.parametrize(
    "best_without, best_with, verdict",
    [
        # Every seed: 0.3 without, 0.0 with -> d = -0.3 each, interval [-0.3, -0.3].
        ([0.3] * 5, [0.0] * 5, "remove"),
        # d = (-0.3, -0.3, -0.2, -0.3, -0.3): mean -0.28, t half-width
        # 2.776 * 0.0447 / sqrt(5) = 0.056 -> [-0.34, -0.22], |mean| >= 0.2.
        ([0.4] * 5, [0.1, 0.1, 0.2, 0.1, 0.1], "significantly decrease"),
        # d = -0.1 every seed: excludes 0, |mean| < 0.2, best rate with BN 0.2 > 0.
        ([0.3] * 5, [0.2] * 5, "slightly decrease"),
        # d = +0.1 / +0.3 every seed.
        ([0.1] * 5, [0.2] * 5, "slightly increase"),
        ([0.1] * 5, [0.4] * 5, "significantly increase"),
        # d = (+0.1, -0.1, +0.2, -0.2, 0): the interval covers zero.
        ([0.2] * 5, [0.3, 0.1, 0.4, 0.0, 0.2], "keep"),
    ],
)
def test_each_verdict_is_reached(best_without, best_with, verdict):
    rec = tuning.recommend(paired_rows(best_without, best_with))
    assert rec.verdict == verdict
    assert rec.seeds == 5
    expected = [round(b - a, 10) for a, b in zip(best_without, best_with)]
    assert list(rec.differences.values()) == pytest.approx(expected)
    assert rec.mean_difference == pytest.approx(np.mean(expected))
    assert verdict in str(rec) or (verdict == "keep" and "keep the dropout rate" in str(rec))


def test_keep_whenever_the_interval_covers_zero():
    # A consistent -0.1 shift on 4 seeds, +0.1 on one: mean -0.06, sd 0.0894,
    # t half-width 2.776 * 0.0894 / sqrt(5) = 0.111 > 0.06 -> covers zero.
    rec = tuning.recommend(paired_rows([0.3] * 5, [0.2, 0.2, 0.2, 0.2, 0.4]))
    low, high = rec.interval_t
    assert low < 0 < high
    assert rec.verdict == "keep"
    text = str(rec)
    assert "cannot tell" in text
    # The text states the largest shift the interval still allows.
    assert f"{max(abs(low), abs(high)):.2f}" in text


def test_one_seed_is_always_keep():
    rec = tuning.recommend(paired_rows([0.3], [0.0]))
    assert rec.interval_t == (-math.inf, math.inf)
    assert rec.verdict == "keep"
    assert "one seed cannot rule out any shift" in str(rec)


def test_best_rates_means_and_gaps():
    rows = paired_rows([0.3] * 3, [0.1] * 3, other_order="act-drop-norm")
    rec = tuning.recommend(rows)
    assert rec.best_rate_without == pytest.approx(0.3)
    assert rec.best_rate_with == pytest.approx(0.1)
    # The worse order (offset +1.0) is never chosen.
    assert rec.best_order_with == "norm-act-drop"
    # At the best rate the parabola is 0: mean of 0.5 + 0.01 * seed over seeds 0..2.
    assert rec.best_score_without == pytest.approx(0.51)
    assert rec.best_score_with == pytest.approx(0.41)
    # The constructed gap equals the metric value.
    assert rec.gap_without == pytest.approx(0.51)
    assert rec.gap_with == pytest.approx(0.41)
    text = str(rec)
    assert "mlp on digits" in text and "0.3" in text and "0.1" in text


def test_t_interval_matches_the_formula():
    values = [-0.3, -0.2, -0.3, -0.1, -0.2]
    low, high = recommendation.t_interval(values)
    half = stats.t.ppf(0.975, 4) * np.std(values, ddof=1) / np.sqrt(5)
    assert (low, high) == pytest.approx((np.mean(values) - half, np.mean(values) + half))


def test_bootstrap_interval_is_reproducible_and_inside_the_range():
    values = [-0.3, -0.2, -0.3, -0.1, -0.2]
    low, high = recommendation.bootstrap_interval(values)
    assert recommendation.bootstrap_interval(values) == (low, high)
    # Resampled means can't leave [min, max]; with 10000 resamples the 95%
    # interval is strictly inside and contains the mean -0.22.
    assert -0.3 <= low < -0.22 < high <= -0.1


def test_edge_of_the_grid_is_flagged():
    rec = tuning.recommend(paired_rows([0.5] * 3, [0.5] * 3))
    assert any("upper edge" in note and "widen" in note for note in rec.notes)
    rec = tuning.recommend(paired_rows([0.1] * 3, [0.1] * 3, rates=(0.1, 0.2, 0.3)))
    assert any("lower edge" in note for note in rec.notes)
    # 0.0 is a natural floor, not an edge to widen.
    rec = tuning.recommend(paired_rows([0.0] * 3, [0.0] * 3))
    assert rec.notes == []


def test_accuracy_metrics_are_maximized():
    # Accuracy = 1 - loss in the constructed rows: same best rates.
    rec = tuning.recommend(paired_rows([0.3] * 3, [0.1] * 3), metric="val_accuracy")
    assert (rec.best_rate_without, rec.best_rate_with) == pytest.approx((0.3, 0.1))


def test_failed_runs_are_ignored():
    rows = paired_rows([0.3] * 3, [0.1] * 3)
    for row in rows:
        if row["rate"] == 0.3 and row["norm"] == "none":
            row["status"] = "failed"
            row["final_val_loss"] = None
    rec = tuning.recommend(rows)
    assert rec.best_rate_without != 0.3


def test_bad_metric_is_refused():
    with pytest.raises(ValueError, match=r"metric must be one of .*got 'val_f1'"):
        tuning.recommend(paired_rows([0.3], [0.1]), metric="val_f1")


def test_runs_without_a_baseline_are_refused():
    rows = [r for r in paired_rows([0.3] * 2, [0.1] * 2) if r["norm"] == "batch"]
    with pytest.raises(ValueError, match=r"without normalization .*norms \['batch'\]"):
        tuning.recommend(rows)
