import csv
import json
import math
import os

import pytest

from kreg import tuning
from kreg.tuning import ledger
from kreg.tuning import schema
from kreg.tuning import space

CONFIG = {"norm": "batch", "order": "norm-act-drop", "rate": 0.3, "seed": 2}
METRICS = {"final_val_loss": 0.25, "final_val_accuracy": 0.9, "epochs": 3, "gap": float("nan")}
DONE = schema.Outcome("completed", METRICS)


def test_record_run_writes_one_row_per_configuration(tmp_path):
    row = tuning.record_run(str(tmp_path), CONFIG, DONE, worker="tuner0")
    assert row["key"] == space.run_key(CONFIG) == tuning.SearchSpace().key(CONFIG)
    assert (row["norm"], row["order"], row["rate"], row["seed"]) == ("batch", "norm-act-drop", 0.3, 2)
    assert row["final_val_loss"] == 0.25 and row["epochs"] == 3
    # Missing metrics and NaN become None (JSON null), never the string "NaN".
    assert row["test_loss"] is None and row["gap"] is None
    # Recording the same configuration again replaces its row.
    tuning.record_run(str(tmp_path), CONFIG, schema.Outcome("completed", dict(METRICS, final_val_loss=0.2)))
    rows = tuning.results(str(tmp_path))
    assert len(rows) == 1 and rows[0]["final_val_loss"] == 0.2
    # The atomic write leaves no temporary file behind.
    assert os.listdir(tmp_path / "runs") == [row["key"] + ".json"]


def test_extra_dimensions_are_kept(tmp_path):
    config = dict(CONFIG, **{"tuner/epochs": 4})
    row = tuning.record_run(str(tmp_path), config, DONE)
    assert row["tuner/epochs"] == 4
    assert row["key"] != space.run_key(CONFIG)


def test_results_ignore_partial_temporary_files(tmp_path):
    tuning.record_run(str(tmp_path), CONFIG, schema.Outcome.failed("NaN"))
    # What a writer killed before os.replace leaves: a hidden, truncated temp file.
    (tmp_path / "runs" / ".abc.json.123.tmp").write_text('{"key": "ab')
    rows = tuning.results(str(tmp_path))
    assert [r["status"] for r in rows] == ["failed"]
    assert rows[0]["message"] == "NaN"


def test_csv_and_json_exports_round_trip(tmp_path):
    for seed in range(3):
        tuning.record_run(str(tmp_path), dict(CONFIG, seed=seed), DONE)
    rows = tuning.results(str(tmp_path))
    rows.to_csv(str(tmp_path / "r.csv"))
    rows.to_json(str(tmp_path / "r.json"))
    with open(tmp_path / "r.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [int(r["seed"]) for r in table] == [0, 1, 2]
    assert list(table[0])[: len(schema.COLUMNS)] == list(schema.COLUMNS)
    assert table[0]["test_loss"] == ""  # None -> empty cell
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["runs"] == list(rows)


def test_dataframe_has_one_row_per_run_with_the_schema_dtypes(tmp_path):
    tuning.record_run(str(tmp_path), CONFIG, DONE, worker="tuner0")
    tuning.record_run(str(tmp_path), dict(CONFIG, norm="none", order=None), schema.Outcome.failed("NaN"))
    frame = tuning.results(str(tmp_path)).to_dataframe()
    assert list(frame.columns) == list(schema.COLUMNS)
    assert len(frame) == 2
    dtypes = {name: str(dtype) for name, dtype in frame.dtypes.items()}
    assert dtypes["rate"] == dtypes["final_val_loss"] == dtypes["gap"] == "float64"
    assert dtypes["seed"] == dtypes["epochs"] == dtypes["best_epoch"] == "Int64"
    assert dtypes["norm"] == dtypes["order"] == dtypes["status"] == "category"
    assert dtypes["finished_at"].startswith("datetime64") and "UTC" in dtypes["finished_at"]
    assert dtypes["key"] == dtypes["message"] == "string"
    failed = frame[frame["status"] == "failed"].iloc[0]
    done = frame[frame["status"] == "completed"].iloc[0]
    assert failed["norm"] == "none" and str(failed["order"]) == "nan" and failed["message"] == "NaN"
    assert math.isnan(failed["final_val_loss"]) and math.isnan(done["gap"])  # None -> NaN, never the string
    assert done["final_val_loss"] == 0.25 and done["epochs"] == 3 and done["seed"] == 2


def test_bad_status_and_missing_study_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"status must be one of .*got 'done'"):
        tuning.record_run(str(tmp_path), CONFIG, schema.Outcome("done", METRICS))
    with pytest.raises(FileNotFoundError, match="holds no kreg study"):
        tuning.results(str(tmp_path / "nowhere"))
