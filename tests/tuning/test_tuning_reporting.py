import csv
import json

import pytest
from tuning_rows import paired_rows

from kreg import tuning
from kreg.tuning import reporting

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_report_writes_every_file_and_they_parse(tmp_path):
    rows = paired_rows([0.3] * 3, [0.1] * 3, other_order="act-drop-norm")
    rec = tuning.report(rows, str(tmp_path))
    assert rec.verdict == "significantly decrease"
    for name in reporting.REPORT_FILES:
        assert (tmp_path / name).stat().st_size > 0
    for name in ("metric_vs_rate.png", "rate_order_heatmap.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE
    with open(tmp_path / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    assert len(json.loads((tmp_path / "results.json").read_text())["runs"]) == len(rows)
    text = (tmp_path / "report.md").read_text()
    assert str(rec) in text
    # One table line per (setting, rate): 3 settings x 6 rates.
    assert sum(line.startswith("| batch: ") or line.startswith("| no norm") for line in text.splitlines()) == 18 + 3
    assert "## Order comparison" in text
    assert "| norm-act-drop | 0.300 | 0.100 | -0.200 |" in text and "| act-drop-norm | 0.300 | 0.100 | -0.200 |" in text
    assert "## Order test" in text and "Winner: norm-act-drop." in text


def test_summary_table_means_and_intervals():
    rows = paired_rows([0.3] * 3, [0.1] * 3)
    table = reporting.summary_table(rows)
    cell = next(t for t in table if t["norm"] == "none" and t["rate"] == 0.3)
    # Values 0.50, 0.51, 0.52: mean 0.51, sd 0.01, t(0.975, 2) = 4.303:
    # half-width 4.303 * 0.01 / sqrt(3) = 0.02484.
    assert cell["n"] == 3
    assert cell["mean"] == pytest.approx(0.51)
    assert cell["half_width"] == pytest.approx(0.02484, abs=1e-4)


def test_report_without_a_baseline_says_what_it_cannot_say(tmp_path):
    rows = [r for r in paired_rows([0.3] * 2, [0.1] * 2) if r["norm"] == "batch"]
    rec = tuning.report(rows, str(tmp_path))
    assert rec.shift is None and rec.best_rate_with == pytest.approx(0.1)
    assert "No runs without normalization" in (tmp_path / "report.md").read_text()


def test_report_of_rows_without_the_compared_norm_says_why(tmp_path):
    rows = [r for r in paired_rows([0.3] * 2, [0.1] * 2) if r["norm"] == "none"]
    assert tuning.report(rows, str(tmp_path)) is None
    assert "No recommendation: recommend needs completed runs with norm='batch'" in (tmp_path / "report.md").read_text()


def test_report_refuses_a_bad_metric(tmp_path):
    with pytest.raises(ValueError, match="metric must be one of"):
        tuning.report(paired_rows([0.3], [0.1]), str(tmp_path), metric="f1")


def test_report_writes_tensorboard_sessions_only_when_asked(tmp_path):
    rows = paired_rows([0.3] * 3, [0.1] * 3)
    tuning.report(rows, str(tmp_path / "plain"))
    assert not (tmp_path / "plain" / "tensorboard").exists()
    tuning.report(rows, str(tmp_path / "tb"), tensorboard=True)
    sessions = sorted(p.name for p in (tmp_path / "tb" / "tensorboard").iterdir() if p.is_dir())
    assert sessions == sorted(r["key"] for r in rows)
    with pytest.raises(ValueError, match="tensorboard must be True or False, got 'yes'"):
        tuning.report(rows, str(tmp_path / "bad"), tensorboard="yes")
