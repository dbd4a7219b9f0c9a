"""`recommend`: the fitted shift, its verdict, the order test, and honest wording.

The rows are exact parabolas per seed (`tuning_rows.paired_rows`), so every
optimum, and hence every shift, is known: the mean of per-seed parabolas
(rate - r_s)^2 is a parabola with its vertex at the mean of the r_s.
"""

import numpy as np
import pandas
import pytest
from tuning_rows import paired_rows

from kreg import tuning
from kreg.tuning import recommendation


@pytest.mark.parametrize(
    "best_without, best_with, verdict, shift",
    [
        ([0.3] * 5, [0.0] * 5, "remove", -0.3),
        ([0.4] * 5, [0.1, 0.1, 0.2, 0.1, 0.1], "significantly decrease", -0.28),
        ([0.3] * 5, [0.2] * 5, "slightly decrease", -0.1),
        ([0.1] * 5, [0.2] * 5, "slightly increase", 0.1),
        ([0.1] * 5, [0.4] * 5, "significantly increase", 0.3),
        # Per-seed optima 0.3, 0.1, 0.4, 0.0, 0.2 with BN: mean 0.2, but the
        # seeds disagree, so the jackknife interval covers zero.
        ([0.2] * 5, [0.3, 0.1, 0.4, 0.0, 0.2], "keep", 0.0),
        # A consistent shift of 0.03 is real but below the minimum effect 0.05.
        ([0.2] * 5, [0.23] * 5, "keep", 0.03),
        ([0.0] * 5, [0.0] * 5, "keep (no dropout either way)", 0.0),
        ([0.5] * 5, [0.3] * 5, "widen the grid", -0.2),
    ],
)
def test_each_verdict_is_reached_with_the_known_shift(best_without, best_with, verdict, shift):
    rec = tuning.recommend(paired_rows(best_without, best_with))
    assert rec.verdict == verdict
    assert rec.shift == pytest.approx(shift, abs=1e-6)
    assert rec.optimum_without == pytest.approx(np.mean(best_without), abs=1e-6)
    assert rec.optimum_with == pytest.approx(np.mean(best_with), abs=1e-6)
    assert rec.seeds == 5 and rec.rates == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    # The grid-argmin differences stay as a sensitivity figure.
    grid = np.array(rec.rates)
    nearest = [grid[np.argmin(abs(grid - r))] for r in best_without + best_with]
    expected = np.array(nearest[5:]) - np.array(nearest[:5])
    assert list(rec.differences.values()) == pytest.approx(expected)
    assert "Sensitivity" in str(rec)


def test_the_interval_is_the_jackknife_of_the_fitted_optima():
    rec = tuning.recommend(paired_rows([0.2] * 5, [0.3, 0.1, 0.4, 0.0, 0.2]))
    # Leaving seed i out moves the BN optimum to the mean of the other four.
    r = np.array([0.3, 0.1, 0.4, 0.0, 0.2])
    replicates = (r.sum() - r) / 4 - 0.2
    se = np.sqrt(4 / 5 * np.sum((replicates - replicates.mean()) ** 2))
    half = 2.7764451051977987 * se  # t(0.975, 4)
    assert rec.interval == pytest.approx((-half, half), abs=1e-6)
    assert f"[{-half:+.2f}, {half:+.2f}]" in str(rec)


def test_every_order_gets_its_shift_and_the_order_test_picks_the_better_one():
    rows = paired_rows([0.3] * 5, [0.1] * 5, other_order="act-drop-norm")
    rec = tuning.recommend(rows)
    assert set(rec.shifts) == {"norm-act-drop", "act-drop-norm"}
    assert rec.shifts["act-drop-norm"].estimate.shift == pytest.approx(-0.2)
    # The other order is uniformly worse by 1.0 on test loss too: it loses
    # every paired t test, and the headline is about the winner.
    assert rec.order_comparison.winner == "norm-act-drop" and rec.best_order_with == "norm-act-drop"
    pair = next(p for p in rec.order_comparison.pairs if {p.first, p.second} == {"norm-act-drop", "act-drop-norm"})
    assert pair.p_adjusted < 0.05
    text = str(rec)
    assert "Order: norm-act-drop wins" in text and "with order act-drop-norm: shift -0.20" in text


def test_orders_that_tie_are_said_to_be_indistinguishable():
    rows = paired_rows([0.3] * 5, [0.1] * 5)
    twin = [dict(row, order="act-norm-drop", key=row["key"] + "x") for row in rows if row["norm"] == "batch"]
    for row in twin:  # per-seed test noise that averages to zero
        row["test_loss"] += 0.01 * (1, -1, 1, -1, 0)[row["seed"]]
    rec = tuning.recommend(tuning.Results(list(rows) + twin, study=rows.study))
    assert rec.order_comparison.winner is None
    pair = next(p for p in rec.order_comparison.pairs if {p.first, p.second} == {"act-norm-drop", "norm-act-drop"})
    assert pair.mean_difference == pytest.approx(0.0, abs=1e-12) and pair.p_adjusted == pytest.approx(1.0)
    assert "Order: the data cannot tell the arms apart" in str(rec)
    # Both orders still get their own shift.
    assert rec.shifts["act-norm-drop"].estimate.shift == pytest.approx(rec.shifts["norm-act-drop"].estimate.shift)


def test_no_baseline_still_recommends_rate_and_order_and_says_what_it_cannot():
    rows = [r for r in paired_rows([0.3] * 4, [0.1] * 4, other_order="act-drop-norm") if r["norm"] == "batch"]
    rec = tuning.recommend(rows)
    assert rec.best_rate_without is None and rec.shift is None
    assert rec.best_rate_with == pytest.approx(0.1) and rec.best_order_with == "norm-act-drop"
    assert rec.order_comparison.winner == "norm-act-drop"
    text = str(rec)
    assert "No runs without normalization" in text and "cannot say how batch norm changes the best rate" in text


def test_too_few_seeds_or_rates_get_no_verdict_and_no_interval():
    two_seeds = tuning.recommend(paired_rows([0.3] * 2, [0.1] * 2))
    assert two_seeds.verdict == "too few paired seeds for a verdict"
    assert two_seeds.interval is None and "[-inf" not in str(two_seeds) and "rules out" not in str(two_seeds)
    two_rates = tuning.recommend(paired_rows([0.0] * 5, [0.5] * 5, rates=(0.0, 0.5)))
    assert two_rates.shift is None and "at least 3 rates" in two_rates.reason
    assert "Verdict: none: the shift needs at least 3 rates, the grid has 2" in str(two_rates)


def test_unpaired_runs_of_a_random_search_get_no_verdict():
    rows = paired_rows([0.3] * 5, [0.1] * 5)
    # Random search: each seed ran only some rates.
    sparse = [r for r in rows if (round(r["rate"] * 10) + r["seed"]) % 2 == 0]
    rec = tuning.recommend(sparse)
    assert rec.seeds == 0 and rec.shift is None
    assert "no seed ran every rate" in rec.reason


def test_keep_wording_is_honest_about_zero_width_intervals():
    # Every seed has the same optimum: the interval is [0, 0]; it proves nothing.
    rec = tuning.recommend(paired_rows([0.2] * 5, [0.22] * 5))
    assert rec.verdict == "keep"
    assert "rules out" not in str(rec) and "the interval's width says little" in str(rec)
    assert "smaller than 0.05" in str(rec)
    # A real interval bounds the plausible shifts, clamped to what rates allow.
    wide = tuning.recommend(paired_rows([0.2] * 5, [0.3, 0.1, 0.4, 0.0, 0.2]))
    low, high = wide.interval
    assert -0.5 <= low < 0 < high <= 0.5 and "are unlikely" in str(wide)


def test_grid_edge_advice_only_with_the_widen_verdict():
    edge = tuning.recommend(paired_rows([0.5] * 5, [0.3] * 5))
    assert "widen the grid above 0.5" in str(edge)
    inside = tuning.recommend(paired_rows([0.3] * 5, [0.2] * 5))
    assert "widen" not in str(inside)


def test_rows_from_anywhere_give_the_same_recommendation(tmp_path):
    rows = paired_rows([0.3] * 5, [0.1] * 5, other_order="act-drop-norm")
    expected = tuning.recommend(rows)
    assert str(tuning.recommend([dict(r) for r in rows])).endswith(str(expected).split(":", 1)[1])
    rows.to_csv(str(tmp_path / "results.csv"))
    frame = pandas.read_csv(tmp_path / "results.csv")
    from_csv = tuning.recommend(frame)
    assert (from_csv.verdict, from_csv.shift, from_csv.best_order_with) == (expected.verdict, pytest.approx(expected.shift), expected.best_order_with)
    assert from_csv.order_comparison.winner == expected.order_comparison.winner


def test_rows_missing_a_column_are_named():
    rows = [dict(r) for r in paired_rows([0.3] * 3, [0.1] * 3)]
    del rows[4]["seed"]
    with pytest.raises(ValueError, match=r"results\[4\] lacks the columns \['seed'\]"):
        tuning.recommend(rows)
    with pytest.raises(ValueError, match=r"results must be a study's rows.*got 42"):
        tuning.recommend(42)


def test_accuracy_metrics_are_maximized():
    # Accuracy = 1 - loss in the constructed rows: the same optima.
    rec = tuning.recommend(paired_rows([0.4] * 5, [0.1] * 5), metric="val_accuracy")
    assert (rec.optimum_without, rec.optimum_with) == pytest.approx((0.4, 0.1), abs=1e-6)
    assert rec.verdict == "significantly decrease"


def test_failed_runs_are_left_out_of_the_pairing():
    rows = paired_rows([0.3] * 5, [0.1] * 5)
    for row in rows:
        if row["seed"] == 4 and row["norm"] == "none" and row["rate"] == 0.3:
            row["status"], row["final_val_loss"] = "failed", None
    rec = tuning.recommend(rows)
    assert rec.seeds == 4 and rec.shift == pytest.approx(-0.2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metric": "val_f1"}, r"metric must be one of .*got 'val_f1'"),
        ({"norm": "instance"}, r"norm must be one of 'batch', 'layer', 'group', got 'instance'"),
        ({"large_shift": -1}, r"large_shift must be a finite number > 0, got -1"),
        ({"min_effect": "big"}, r"min_effect must be a number > 0, got 'big'"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tuning.recommend(paired_rows([0.3] * 3, [0.1] * 3), **kwargs)


def test_a_norm_without_runs_is_refused():
    with pytest.raises(ValueError, match=r"needs completed runs with norm='layer'.*\['batch', 'none'\]"):
        tuning.recommend(paired_rows([0.3] * 3, [0.1] * 3), norm="layer")


def test_jupyter_shows_the_paragraph_the_table_and_the_plot():
    rec = tuning.recommend(paired_rows([0.3] * 5, [0.1] * 5))
    markdown = rec._repr_markdown_()
    assert markdown.startswith(str(rec))
    assert "| none | 0.3 |" in markdown and "| norm-act-drop | 0.1 |" in markdown
    assert "data:image/png;base64,iVBOR" in markdown  # a PNG


def test_t_interval_matches_the_formula():
    from scipy import stats

    values = [-0.3, -0.2, -0.3, -0.1, -0.2]
    low, high = recommendation.t_interval(values)
    half = stats.t.ppf(0.975, 4) * np.std(values, ddof=1) / np.sqrt(5)
    assert (low, high) == pytest.approx((np.mean(values) - half, np.mean(values) + half))


def test_recommend_leaves_the_callers_rows_as_they_were():
    rows = [dict(r) for r in paired_rows([0.3] * 3, [0.1] * 3)]
    for row in rows:
        if row["norm"] == "none":
            row["order"] = float("nan")  # what a CSV round trip gives
    before = [dict(r) for r in rows]
    rec = tuning.recommend(rows)
    assert rec.shift == pytest.approx(-0.2)
    assert [str(r["order"]) for r in rows] == [str(r["order"]) for r in before]
