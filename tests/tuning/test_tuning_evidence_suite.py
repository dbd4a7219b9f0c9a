"""`kreg.tuning.evidence` (tuning/evidence_suite.py): pooling a suite of studies, flagging, the answer's wording.

The pooling tests use exact parabola rows (`tuning_rows.paired_rows`): every
seed's best rate is known, the fitted optimum of an arm is the mean of its
seeds' best rates, so every setting's shift is known. Each setting's seeds
spread their best rates with batch norm by the same pattern, so every
setting has the same jackknife standard error and the pooled mean is the
plain mean of the known shifts. The last test trains the quick suite for real.
"""

import json
import os

import numpy as np
import pytest
from tuning_rows import paired_rows

from kreg import tuning
from kreg.tuning import evidence_suite as evidence_module
from kreg.tuning import ledger
from kreg.tuning import statistics

SPREAD = (-0.1, 0.0, 0.1, 0.0, 0.0)  # per-seed spread of the best rate with batch norm
# The jackknife se of a mean over 5 seeds with SPREAD: sqrt(4/5 * 2 * 0.025^2).
SE = np.sqrt(0.8 * 2 * 0.025**2)
OTHER = "act-norm-drop"


def setting(without, shift, other_order=OTHER, spread=SPREAD):
    """The recommendation of one setting with known optima `without` and `without + shift`."""
    best_with = [round(without + shift + s, 10) for s in spread]
    return tuning.recommend(paired_rows([without] * len(spread), best_with, other_order=other_order))


def combine(shifts, **kwargs):
    return evidence_module.combine({f"s{i}": setting(w, d, **kwargs) for i, (w, d) in enumerate(shifts)})


def test_the_pooled_shift_is_the_known_mean_and_a_consistent_decrease_is_general():
    shifts = [(0.3, -0.1), (0.35, -0.15), (0.3, -0.1), (0.4, -0.2), (0.3, -0.1)]
    result = combine(shifts)
    for row in result.shifts:
        assert row.included and row.flag == ""
        assert row.se == pytest.approx(SE) and row.weight_se == pytest.approx(SE)
    known = {f"s{i}": d for i, (_, d) in enumerate(shifts)}
    assert {r.setting: r.shift for r in result.shifts if r.order == OTHER} == pytest.approx(known)
    for order in ("norm-act-drop", OTHER):
        pooled = result.pooled[order]
        assert pooled.pooled.k == 5 and pooled.included == list(known)
        # Equal standard errors: equal random-effects weights, the plain mean.
        assert pooled.pooled.mean == pytest.approx(np.mean(list(known.values())))
        expected = statistics.pool(list(known.values()), [SE] * 5)
        assert pooled.pooled.tau2 == pytest.approx(expected.tau2)
        assert pooled.pooled.prediction_interval == pytest.approx(expected.prediction_interval)
        assert pooled.pooled.prediction_interval[1] < 0
        assert pooled.general
        assert pooled.answer.startswith(f"With batch norm in order {order}: slightly decrease the dropout rate, by about 0.13")
    assert "excludes 0" in str(result)


def test_identical_shifts_have_no_heterogeneity():
    result = combine([(0.3, -0.1)] * 5)
    pooled = result.pooled["norm-act-drop"].pooled
    assert pooled.mean == pytest.approx(-0.1)
    assert pooled.tau2 == pytest.approx(0.0, abs=1e-12) and pooled.i2 == 0.0
    assert pooled.q == pytest.approx(0.0, abs=1e-9)


def test_a_setting_on_the_upper_edge_is_flagged_and_left_out():
    shifts = [(0.3, -0.1), (0.3, -0.1), (0.3, -0.1), (0.3, -0.1), (0.3, -0.1)]
    recs = {f"s{i}": setting(w, d) for i, (w, d) in enumerate(shifts)}
    # Without batch norm every seed is best at the top rate 0.5: widen the grid.
    recs["edge"] = tuning.recommend(paired_rows([0.5] * 5, [0.3 + s for s in SPREAD], other_order=OTHER))
    result = evidence_module.combine(recs)
    edge = [r for r in result.shifts if r.setting == "edge"]
    assert len(edge) == 2 and all(not r.included and r.verdict == "widen the grid" for r in edge)
    assert all(r.flag.startswith("widen the grid") and r.weight_se is None for r in edge)
    for pooled in result.pooled.values():
        assert "edge" not in pooled.included and "edge" in pooled.excluded
        assert pooled.pooled.k == 5 and pooled.pooled.mean == pytest.approx(-0.1)
    assert "Left out of the pool: edge: widen the grid" in str(result)


def test_too_few_settings_for_a_prediction_interval_depend_on_the_model_and_data():
    result = combine([(0.3, -0.1)] * 4)
    pooled = result.pooled["norm-act-drop"]
    assert pooled.pooled.k == 4 and pooled.pooled.prediction_interval is None
    assert not pooled.general
    assert "depends on the model and data: 4 settings pooled" in pooled.answer
    assert "needs at least 5" in pooled.answer
    # The mean itself is clearly below 0, and the answer says so, without generalizing.
    assert "On average over these settings the rate moves down" in pooled.answer


def test_settings_that_disagree_depend_on_the_model_and_data_and_are_named():
    shifts = [(0.2, -0.2), (0.2, -0.2), (0.2, 0.0), (0.2, 0.2), (0.2, 0.2)]
    result = combine(shifts)
    pooled = result.pooled["norm-act-drop"]
    low, high = pooled.pooled.prediction_interval
    assert low < 0 < high and pooled.pooled.tau2 > 0 and pooled.pooled.i2 > 0.5
    assert not pooled.general
    answer = pooled.answer
    assert "depends on the model and data: the 95% prediction interval" in answer and "covers 0" in answer
    assert "lower: s0 (-0.20), s1 (-0.20)" in answer
    assert "keep: s2 (+0.00)" in answer and "higher: s3 (+0.20), s4 (+0.20)" in answer


def test_a_prediction_interval_within_the_minimum_effect_is_a_general_keep():
    result = combine([(0.2, 0.0)] * 5)
    pooled = result.pooled["norm-act-drop"]
    low, high = pooled.pooled.prediction_interval
    assert -statistics.MIN_EFFECT <= low < 0 < high <= statistics.MIN_EFFECT
    assert pooled.general and "keep the dropout rate" in pooled.answer


def test_a_zero_standard_error_is_floored_and_marked():
    result = combine([(0.3, -0.1)] * 2 + [(0.3, -0.2)], spread=(0.0,) * 5)
    floor = evidence_module.SE_FLOOR * 0.1
    for row in result.shifts:
        assert row.se == pytest.approx(0.0, abs=1e-12)
        assert row.included and row.weight_se == pytest.approx(floor) and "floored" in row.flag
    assert result.pooled["norm-act-drop"].pooled.mean == pytest.approx(np.mean([-0.1, -0.1, -0.2]))


def test_a_shift_without_an_interval_is_left_out():
    recs = {"two-seeds": tuning.recommend(paired_rows([0.3, 0.3], [0.2, 0.2])), "ok": setting(0.3, -0.1, other_order=None)}
    result = evidence_module.combine(recs)
    row = next(r for r in result.shifts if r.setting == "two-seeds")
    assert not row.included and row.flag.startswith("no interval")
    pooled = result.pooled["norm-act-drop"]
    assert pooled.pooled is None and pooled.included == ["ok"]
    assert "at least 2 are needed" in pooled.answer


def test_the_order_test_winners_are_counted_and_the_paired_differences_pooled():
    result = combine([(0.3, -0.1)] * 5)
    assert all(o.winner == "norm-act-drop" for o in result.orders)
    # The other order is worse by 1.0 - 0.01 * seed on test loss (tuning_rows).
    d = -1.0 + 0.01 * np.arange(5)
    for o in result.orders:
        mean, se, n = o.differences[f"norm-act-drop - {OTHER}"]
        assert (mean, n) == (pytest.approx(d.mean()), 5) and se == pytest.approx(d.std(ddof=1) / np.sqrt(5))
    pooled = result.order_pooled[f"norm-act-drop - {OTHER}"]
    assert pooled.pooled.k == 5 and pooled.pooled.mean == pytest.approx(d.mean())
    assert "norm-act-drop is better in general" in pooled.answer
    text = str(result)
    assert "Order test winners over 5 settings: norm-act-drop in 5, act-norm-drop in 0" in text
    assert "no winner in 0" in text


def test_write_makes_the_report_the_json_and_the_forest_plot(tmp_path):
    shifts = [(0.3, -0.1), (0.3, -0.2), (0.3, -0.1), (0.3, 0.0), (0.3, -0.1)]
    recs = {f"s{i}": setting(w, d) for i, (w, d) in enumerate(shifts)}
    recs["edge"] = tuning.recommend(paired_rows([0.5] * 5, [0.3 + s for s in SPREAD], other_order=OTHER))
    result = evidence_module.combine(recs, command="kreg evidence --out x")
    paths = result.write(tmp_path / "out")
    assert [os.path.basename(p) for p in paths] == list(evidence_module.EVIDENCE_FILES)
    data = json.loads((tmp_path / "out" / "evidence.json").read_text())
    assert {"settings", "pooled", "order_pooled", "order_tests", "answer", "command", "suite"} <= set(data)
    assert data["pooled"]["norm-act-drop"]["pooled"]["k"] == 5
    assert data["pooled"]["norm-act-drop"]["excluded"]["edge"].startswith("widen the grid")
    markdown = (tmp_path / "out" / "evidence.md").read_text()
    for part in ("## The answer", "| edge | norm-act-drop |", "HKSJ", "tau^2", "I^2", "prediction interval",
                 "kreg evidence --out x", "forest.png"):
        assert part in markdown
    assert (tmp_path / "out" / "forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _runs(directory):
    snapshot = {}
    for root, _, files in os.walk(directory):
        if os.path.basename(root) == ledger.RUNS_DIR:
            for name in files:
                path = os.path.join(root, name)
                snapshot[path] = (os.stat(path).st_mtime_ns, open(path, encoding="utf-8").read())
    return snapshot


def test_kreg_evidence_quick_runs_end_to_end_and_resumes_without_training(tmp_path, capsys):
    from kreg import cli

    directory = tmp_path / "evidence"
    assert cli.main(["evidence", "--quick", "--quiet", "--out", str(directory)]) == 0
    printed = capsys.readouterr().out
    assert f"Evidence: {directory}/evidence.md, evidence.json, forest.png" in printed
    expected_runs = sum(s.runs() for s in evidence_module.QUICK_SUITE)
    assert all(os.path.isdir(directory / s.name) for s in evidence_module.QUICK_SUITE)
    data = json.loads((directory / "evidence.json").read_text(encoding="utf-8"))
    assert {"suite", "settings", "pooled", "order_pooled", "answer", "command", "wall_time"} <= set(data)
    assert data["command"] == f"kreg evidence --quick --out {directory}"
    assert len(data["settings"]) == 2 * len(evidence_module.QUICK_SUITE)
    assert (directory / "forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "## Per setting" in (directory / "evidence.md").read_text(encoding="utf-8")
    before = _runs(directory)
    assert len(before) == expected_runs
    again = evidence_module.evidence(directory, quick=True, quiet=True)
    assert _runs(directory) == before  # nothing trained, nothing rewritten
    assert again.runs == expected_runs and again.quick
    assert again.to_dict()["settings"] == data["settings"]
    assert str(again) in printed


def test_the_suites_are_documented_and_take_norm_and_order():
    from kreg import models

    assert len(evidence_module.SUITE) >= 6
    for suite in (evidence_module.SUITE, evidence_module.QUICK_SUITE):
        assert len({s.name for s in suite}) == len(suite)
        for s in suite:
            defaults = models.info(s.model).defaults
            assert "norm" in defaults and "order" in defaults, s.model
            assert s.why and s.runs() == 3 * len(s.rates) * s.seeds
    assert not {s.name for s in evidence_module.SUITE} & {s.name for s in evidence_module.QUICK_SUITE}


def test_bad_suites_are_refused(tmp_path):
    with pytest.raises(ValueError, match="suite"):
        evidence_module.evidence(tmp_path, suite=())
    twice = evidence_module.QUICK_SUITE[:1] * 2
    with pytest.raises(ValueError, match="distinct names"):
        evidence_module.evidence(tmp_path, suite=twice)
