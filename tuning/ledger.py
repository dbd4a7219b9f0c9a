"""The results ledger: one file per run, written atomically.

A study directory holds `study.json` (what the study is) and `runs/`, one JSON
file per finished run, named by the run's key (`SearchSpace.key`). Every file
is written to a temporary name in the same folder and moved into place with
`os.replace`, so a process killed at any moment (SIGKILL included) leaves
either the old file or the new one, never half of one.

The ledger, not Keras Tuner's own state, is what makes a study resumable: on a
new start every configuration that already has a row is skipped (packed) or
answered from its row (Keras Tuner trials) instead of being trained again.
"""

import csv
import json
import os

from kreg.tuning import schema

STUDY_FILE = "study.json"
RUNS_DIR = "runs"


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


def record_run(directory, config, outcome, worker=None):
    """Records one run as one row. Every executor's runs are recorded here.

    Args:
        directory: the study directory.
        config: the run's configuration (see `kreg.tuning.SearchSpace`).
        outcome: a `kreg.tuning.schema.Outcome`.
        worker: who trained the run.

    Returns:
        The row dict that was written (see `kreg.tuning.schema.row`).
    """
    values = schema.row(config, outcome, worker)
    runs = os.path.join(directory, RUNS_DIR)
    os.makedirs(runs, exist_ok=True)
    atomic_write_text(os.path.join(runs, values["key"] + ".json"), json.dumps(values, indent=1))
    return values


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

    Rows follow `kreg.tuning.schema.COLUMNS` (plus any extra searched
    dimension). `study` holds the study description (model, dataset, grid)
    or None.

    Example:

    ```python
    rows = kreg.tuning.results("kreg-study")
    rows.to_csv("runs.csv")
    df = rows.to_dataframe()
    ```
    """

    def __init__(self, rows=(), study=None):
        super().__init__(rows)
        self.study = study

    def columns(self):
        """`schema.COLUMNS` first, then any extra key found in a row, sorted."""
        extra = sorted({name for row in self for name in row} - set(schema.COLUMNS))
        return list(schema.COLUMNS) + extra

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
        """The rows as a pandas DataFrame, one row per run.

        Columns follow `columns()`. Dtypes: `rate` and the measured values
        float64 (NaN where a failed run measured nothing), `seed`, `epochs`
        and `best_epoch` nullable Int64, `norm`, `order` and `status`
        categorical, `finished_at` a UTC datetime, the rest strings.
        """
        import pandas

        frame = pandas.DataFrame(list(self), columns=self.columns())
        for name in schema.MEASURED_COLUMNS + ("rate",):
            frame[name] = pandas.to_numeric(frame[name], errors="coerce").astype("float64")
        for name in schema.INT_COLUMNS + ("seed",):
            frame[name] = frame[name].astype("Int64")
        for name in ("norm", "order", "status"):
            frame[name] = frame[name].astype("category")
        frame["finished_at"] = pandas.to_datetime(frame["finished_at"], utc=True)
        for name in ("key", "worker", "message"):
            frame[name] = frame[name].astype("string")
        return frame


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
