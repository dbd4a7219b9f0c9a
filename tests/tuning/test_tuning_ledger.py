import csv
import json
import os

import pytest

from kreg import tuning
from kreg.tuning import ledger

CONFIG = {"norm": "batch", "order": "norm-act-drop", "rate": 0.3, "seed": 2}
METRICS = {"final_val_loss": 0.25, "final_val_accuracy": 0.9, "epochs": 3, "gap": float("nan")}


def test_record_run_writes_one_row_per_configuration(tmp_path):
    row = tuning.record_run(str(tmp_path), CONFIG, METRICS, "completed", worker="tuner0")
    assert row["key"] == ledger.run_key(CONFIG)
    assert (row["norm"], row["order"], row["rate"], row["seed"]) == ("batch", "norm-act-drop", 0.3, 2)
    assert row["final_val_loss"] == 0.25 and row["epochs"] == 3
    # Missing metrics and NaN become None (JSON null), never the string "NaN".
    assert row["test_loss"] is None and row["gap"] is None
    # Recording the same configuration again replaces its row.
    tuning.record_run(str(tmp_path), CONFIG, dict(METRICS, final_val_loss=0.2), "completed")
    rows = tuning.results(str(tmp_path))
    assert len(rows) == 1 and rows[0]["final_val_loss"] == 0.2
    # The atomic write leaves no temporary file behind.
    assert os.listdir(tmp_path / "runs") == [row["key"] + ".json"]


def test_extra_dimensions_are_kept(tmp_path):
    config = dict(CONFIG, **{"tuner/epochs": 4})
    row = tuning.record_run(str(tmp_path), config, METRICS, "completed")
    assert row["tuner/epochs"] == 4
    assert row["key"] != ledger.run_key(CONFIG)


def test_results_ignore_partial_temporary_files(tmp_path):
    tuning.record_run(str(tmp_path), CONFIG, METRICS, "failed", message="NaN")
    # What a writer killed before os.replace leaves: a hidden, truncated temp file.
    (tmp_path / "runs" / ".abc.json.123.tmp").write_text('{"key": "ab')
    rows = tuning.results(str(tmp_path))
    assert [r["status"] for r in rows] == ["failed"]
    assert rows[0]["message"] == "NaN"


def test_csv_and_json_exports_round_trip(tmp_path):
    for seed in range(3):
        tuning.record_run(str(tmp_path), dict(CONFIG, seed=seed), METRICS, "completed")
    rows = tuning.results(str(tmp_path))
    rows.to_csv(str(tmp_path / "r.csv"))
    rows.to_json(str(tmp_path / "r.json"))
    with open(tmp_path / "r.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [int(r["seed"]) for r in table] == [0, 1, 2]
    assert list(table[0])[: len(ledger.COLUMNS)] == list(ledger.COLUMNS)
    assert table[0]["test_loss"] == ""  # None -> empty cell
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["runs"] == list(rows)


def test_dataframe_needs_pandas(tmp_path):
    tuning.record_run(str(tmp_path), CONFIG, METRICS, "completed")
    rows = tuning.results(str(tmp_path))
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pandas"):
            rows.to_dataframe()
    else:
        frame = rows.to_dataframe()
        assert list(frame["rate"]) == [0.3]


def test_bad_status_and_missing_study_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"status must be one of .*got 'done'"):
        tuning.record_run(str(tmp_path), CONFIG, METRICS, "done")
    with pytest.raises(FileNotFoundError, match="holds no kreg study"):
        tuning.results(str(tmp_path / "nowhere"))
