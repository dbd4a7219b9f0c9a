"""The results ledger: one file per run, written atomically.

A study directory holds `study.json` (what the study is) and `runs/`, one JSON
file per finished run, named by the run's configuration key. Every file is
written to a temporary name in the same folder and moved into place with
`os.replace`, so a process killed at any moment (SIGKILL included) leaves
either the old file or the new one, never half of one.

The ledger, not Keras Tuner's own state, is what makes a study resumable: on a
new start the search is replayed and every configuration that already has a
row is answered from it instead of being trained again.
"""

import csv
import datetime
import hashlib
import json
import math
import os

STUDY_FILE = "study.json"
RUNS_DIR = "runs"

# The configuration of a run: the searched dimensions.
CONFIG_COLUMNS = ("norm", "order", "rate", "seed")
# What a run measured (`None` where a failed run could not measure it).
METRIC_COLUMNS = (
    "epochs",
    "final_train_loss",
    "final_train_accuracy",
    "final_val_loss",
    "final_val_accuracy",
    "best_val_loss",
    "best_val_accuracy",
    "best_epoch",
    "gap",
    "test_loss",
    "test_accuracy",
    "wall_time",
)
INT_COLUMNS = ("epochs", "best_epoch")
COLUMNS = ("key", "status") + CONFIG_COLUMNS + METRIC_COLUMNS + ("worker", "finished_at", "message")
STATUSES = ("completed", "failed")


def atomic_write_text(path, text):
    """Writes `text` to `path` so that readers never see a partial file.

    Args:
        path: destination file.
        text: the full content.
    """
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def run_key(config):
    """A short stable key for a configuration dict (the name of its row file).

    Example:

    ```python
    run_key({"norm": "none", "order": None, "rate": 0.1, "seed": 0})  # 16 hex digits
    ```
    """
    text = json.dumps(config, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _clean(value):
    """JSON-safe scalar: numpy scalars to Python, non-finite floats to None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def record_run(directory, config, metrics, status, message="", worker=None):
    """Records one run as one row. Every executor records rows through here.

    Args:
        directory: the study directory.
        config: dict of the run's hyperparameter values (at least `norm`,
            `rate`, `seed`; `order` is None where no normalization is used).
        metrics: dict with any of `METRIC_COLUMNS` (missing ones become None).
        status: "completed" or "failed".
        message: why a run failed (empty for completed runs).
        worker: id of the process that trained the run.

    Returns:
        The row dict that was written.
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    row = {"key": run_key(config), "status": status}
    row.update({name: _clean(config.get(name)) for name in CONFIG_COLUMNS})
    row.update({name: _clean(metrics.get(name)) for name in METRIC_COLUMNS})
    for name in INT_COLUMNS:  # counts pass through Keras Tuner as floats
        row[name] = None if row[name] is None else int(row[name])
    row["worker"] = worker
    row["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    row["message"] = message
    # Dimensions beyond the usual four (e.g. Hyperband's "tuner/epochs").
    row.update({name: _clean(value) for name, value in sorted(config.items()) if name not in row})
    runs = os.path.join(directory, RUNS_DIR)
    os.makedirs(runs, exist_ok=True)
    atomic_write_text(os.path.join(runs, row["key"] + ".json"), json.dumps(row, indent=1))
    return row


def read_study(directory):
    """The study description in `directory`, or None if there is none."""
    path = os.path.join(directory, STUDY_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_study(directory, description):
    """Writes the study description (creating `directory`)."""
    os.makedirs(directory, exist_ok=True)
    atomic_write_text(os.path.join(directory, STUDY_FILE), json.dumps(description, indent=1))


class Results(list):
    """Every run of a study: a list of row dicts, with exports.

    Rows follow `COLUMNS` (plus any extra searched dimension). `study` holds
    the study description (model, dataset, grid) or None.

    Example:

    ```python
    rows = kreg.tuning.results("kreg-study")
    rows.to_csv("runs.csv")
    df = rows.to_dataframe()  # needs pandas
    ```
    """

    def __init__(self, rows=(), study=None):
        super().__init__(rows)
        self.study = study

    def columns(self):
        """`COLUMNS` first, then any extra key found in a row, sorted."""
        extra = sorted({name for row in self for name in row} - set(COLUMNS))
        return list(COLUMNS) + extra

    def to_csv(self, path):
        """Writes the rows as CSV (empty cells for missing values)."""
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns())
            writer.writeheader()
            for row in self:
                writer.writerow({k: "" if v is None else v for k, v in row.items()})

    def to_json(self, path):
        """Writes `{"study": ..., "runs": [...]}` as JSON."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"study": self.study, "runs": list(self)}, f, indent=1)

    def to_dataframe(self):
        """The rows as a pandas DataFrame (pandas is an optional dependency)."""
        try:
            import pandas
        except ImportError as e:
            raise ImportError("to_dataframe() needs pandas: pip install pandas") from e
        return pandas.DataFrame(list(self), columns=self.columns())


def results(directory):
    """Every run recorded in a study directory.

    Args:
        directory: a study directory (written by `Study.run()`).

    Returns:
        A `Results` list of row dicts, sorted by configuration.

    Example:

    ```python
    rows = kreg.tuning.results("kreg-study")
    print(len(rows), rows[0]["final_val_loss"])
    ```
    """
    study = read_study(directory)
    runs = os.path.join(directory, RUNS_DIR)
    if study is None and not os.path.isdir(runs):
        raise FileNotFoundError(f"directory {directory!r} holds no kreg study (no {STUDY_FILE} and no {RUNS_DIR}/)")
    rows = []
    for name in sorted(os.listdir(runs)) if os.path.isdir(runs) else ():
        if name.endswith(".json") and not name.startswith("."):
            with open(os.path.join(runs, name), encoding="utf-8") as f:
                rows.append(json.load(f))
    rows.sort(key=lambda r: (str(r["norm"]), str(r["order"]), r["rate"], r["seed"], r["key"]))
    return Results(rows, study=study)
