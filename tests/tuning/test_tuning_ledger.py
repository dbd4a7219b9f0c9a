import csv
import errno
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


# Corrupt state is named, never dropped silently.


def _good_and_bad(tmp_path):
    """One good row, and row files that are no rows."""
    good = tuning.record_run(str(tmp_path), CONFIG, DONE)
    runs = tmp_path / "runs"
    (runs / "ab12.json").write_text("")  # a truncated file: no JSON at all
    other = dict(good, key="cd34")
    (runs / "ef56.json").write_text(json.dumps(other))  # someone else's key
    lacking = {k: v for k, v in good.items() if k not in ("rate", "seed")}
    lacking["key"] = "0123"
    (runs / "0123.json").write_text(json.dumps(lacking))
    (runs / "4567.json").write_text("[1, 2]")
    return good


def test_corrupt_row_files_are_moved_aside_with_a_warning(tmp_path):
    good = _good_and_bad(tmp_path)
    with pytest.warns(UserWarning) as caught:
        rows = tuning.results(str(tmp_path))
    assert list(rows) == [good]
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        "runs/0123.json is not a valid row (lacks the columns ['rate', 'seed']): moved to runs/corrupt/; that run trains again",
        "runs/4567.json is not a valid row (not a JSON object but a list): moved to runs/corrupt/; that run trains again",
        "runs/ab12.json is not a valid row (Expecting value: line 1 column 1 (char 0)): moved to runs/corrupt/; that run trains again",
        "runs/ef56.json is not a valid row (its key 'cd34' is not its file name): moved to runs/corrupt/; that run trains again",
    ]
    assert sorted(os.listdir(tmp_path / "runs")) == sorted([good["key"] + ".json", "corrupt"])
    assert sorted(os.listdir(tmp_path / "runs" / "corrupt")) == ["0123.json", "4567.json", "ab12.json", "ef56.json"]
    assert (tmp_path / "runs" / "corrupt" / "ab12.json").read_text() == ""  # moved, not rewritten
    # Once aside they are quiet; a second corrupt file of the same name keeps the first.
    (tmp_path / "runs" / "ab12.json").write_text("{")
    with pytest.warns(UserWarning, match=r"^runs/ab12.json is not a valid row .*: moved to runs/corrupt/ab12.json.1; that run trains again$"):
        assert list(tuning.results(str(tmp_path))) == [good]
    assert (tmp_path / "runs" / "corrupt" / "ab12.json.1").read_text() == "{"


def test_foreign_entries_of_runs_are_ignored_with_a_warning(tmp_path):
    good = tuning.record_run(str(tmp_path), CONFIG, DONE)
    (tmp_path / "runs" / "notes.txt").write_text("mine")
    (tmp_path / "runs" / "old").mkdir()
    with pytest.warns(UserWarning) as caught:
        assert list(tuning.results(str(tmp_path))) == [good]
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        f"runs/notes.txt in {str(tmp_path)!r} is not a row file (rows are KEY.json): ignored",
        f"runs/old/ in {str(tmp_path)!r} is a folder, not a row file: ignored",
    ]
    assert (tmp_path / "runs" / "notes.txt").read_text() == "mine" and (tmp_path / "runs" / "old").is_dir()


def _read_only(monkeypatch, folder):
    """Makes `folder` read-only: by its mode, or where that does not stop
    writes (root), by failing every call that would change it."""
    os.chmod(folder / "runs", 0o555)
    os.chmod(folder, 0o555)
    probe = folder / "probe"
    try:
        probe.write_text("")
    except PermissionError:
        return
    probe.unlink()
    inside = str(folder)

    def fail(real):
        def call(path, *args, **kwargs):
            if os.fspath(path).startswith(inside):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
            return real(path, *args, **kwargs)

        return call

    real_open = os.open

    def open_(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and os.fspath(path).startswith(inside):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    for name in ("rename", "replace", "mkdir", "unlink"):
        monkeypatch.setattr(os, name, fail(getattr(os, name)))


def _writable_again(monkeypatch, folder):
    monkeypatch.undo()
    os.chmod(folder, 0o755)
    os.chmod(folder / "runs", 0o755)


def test_results_of_a_read_only_directory_skip_corrupt_rows_without_moving(tmp_path, monkeypatch):
    good = _good_and_bad(tmp_path)
    ledger.write_study(str(tmp_path), {"model": "mlp"})
    before = sorted(os.listdir(tmp_path / "runs"))
    _read_only(monkeypatch, tmp_path)
    try:
        with pytest.warns(UserWarning) as caught:
            rows = tuning.results(str(tmp_path))
        after = sorted(os.listdir(tmp_path / "runs"))
        top = sorted(os.listdir(tmp_path))
    finally:
        _writable_again(monkeypatch, tmp_path)
    assert list(rows) == [good] and rows.study == {"model": "mlp"}
    assert after == before and top == ["runs", "study.json"]
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 4
    assert messages[2].startswith("runs/ab12.json is not a valid row (Expecting value: line 1 column 1 (char 0)): skipped and left in place")
    assert all(m.endswith("since the directory is not writable (Read-only file system)") or m.endswith("(Permission denied)") for m in messages)


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("call", ["write", "fsync", "replace"])
def test_a_full_disk_is_named_and_leaves_the_old_row_intact(tmp_path, monkeypatch, call):
    old = tuning.record_run(str(tmp_path), CONFIG, DONE)
    written = (tmp_path / "runs" / (old["key"] + ".json")).read_text()
    monkeypatch.setattr(os, call, _enospc)
    with pytest.raises(ledger.StudyWriteError) as refused:
        tuning.record_run(str(tmp_path), CONFIG, schema.Outcome("completed", dict(METRICS, final_val_loss=0.1)))
    monkeypatch.undo()
    assert str(refused.value) == f"cannot write runs/{old['key']}.json in {str(tmp_path)!r}: No space left on device"
    assert isinstance(refused.value, OSError) and refused.value.errno == errno.ENOSPC
    assert isinstance(refused.value.__cause__, OSError)
    # No temporary file left, the old row as it was.
    assert os.listdir(tmp_path / "runs") == [old["key"] + ".json"]
    assert (tmp_path / "runs" / (old["key"] + ".json")).read_text() == written
    assert list(tuning.results(str(tmp_path))) == [old]


def test_a_full_disk_while_writing_the_study_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(OSError, match=r"^cannot write study\.json in '.*': No space left on device$"):
        ledger.write_study(str(tmp_path / "s"), {"model": "mlp"})
    monkeypatch.undo()
    assert os.listdir(tmp_path / "s") == []


def test_a_read_only_directory_is_named_when_recording(tmp_path, monkeypatch):
    old = tuning.record_run(str(tmp_path), CONFIG, DONE)
    _read_only(monkeypatch, tmp_path)
    try:
        with pytest.raises(ledger.StudyWriteError) as refused:
            tuning.record_run(str(tmp_path), dict(CONFIG, seed=7), DONE)
        after = os.listdir(tmp_path / "runs")
    finally:
        _writable_again(monkeypatch, tmp_path)
    key = space.run_key(dict(CONFIG, seed=7))
    assert str(refused.value) in (
        f"cannot write runs/{key}.json in {str(tmp_path)!r}: Permission denied",
        f"cannot write runs/{key}.json in {str(tmp_path)!r}: Read-only file system",
    )
    assert after == [old["key"] + ".json"]
    assert list(tuning.results(str(tmp_path))) == [old]


def test_a_write_error_pickles_with_its_message():
    import pickle

    error = ledger.StudyWriteError.of(OSError(errno.ENOSPC, "No space left on device", "/x/.a.tmp"), "write", "runs/a.json", "/x")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) == "cannot write runs/a.json in '/x': No space left on device"
    assert again.errno == errno.ENOSPC and again.filename == "/x/.a.tmp"


def test_results_show_as_a_table_in_jupyter(tmp_path):
    tuning.record_run(str(tmp_path), CONFIG, DONE, worker="tuner0")
    rows = tuning.Results(tuning.results(str(tmp_path)), study={"model": "mlp", "dataset": "<digits>"})
    shown = rows._repr_html_()
    assert shown.startswith("<p>1 runs of mlp on &lt;digits&gt;</p>") and "<table" in shown
    assert "final_val_loss" in shown and "0.25" in shown
