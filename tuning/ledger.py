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

import collections
import csv
import html
import errno
import io
import json
import os
import secrets
import warnings

from kreg.tuning import schema

STUDY_FILE = "study.json"
RUNS_DIR = "runs"
# Where `results` moves the row files it cannot use (inside `runs/`).
CORRUPT_DIR = "corrupt"
# The columns without which a row is no row (`schema.COLUMNS` lists them all).
REQUIRED_COLUMNS = ("key", "status", "norm", "order", "rate", "seed")


class StudyWriteError(OSError):
    """A study file could not be written (full disk, read-only directory, ...).

    An `OSError` with the cause's `errno`, `strerror` and `filename`, whose
    message names the file, the study directory and the cause in one line,
    e.g. "cannot write runs/ab12.json in 'kreg-study': No space left on
    device". The temporary file of the failed write is removed; the file
    that was there before (if any) is intact.
    """

    def __init__(self, code, strerror, filename=None, message=None):
        super().__init__(code, strerror, filename)
        self.message = message or f"cannot write {filename!r}: {strerror}"

    def __str__(self):
        return self.message

    def __reduce__(self):
        return (type(self), (self.errno, self.strerror, self.filename, self.message))

    @classmethod
    def of(cls, error, action, name, root):
        """The error for `error` (an OSError) while trying to `action` `name` in `root`.

        `name` is relative to the study directory `root` (None: `root` itself;
        `root` None: `name` is a full path).
        """
        cause = error.strerror or str(error) or type(error).__name__
        if root is None:
            where = repr(name)
        elif name is None:
            where = repr(root)
        else:
            where = f"{name} in {root!r}"
        return cls(error.errno, cause, error.filename, f"cannot {action} {where}: {cause}")


def _fsync_folder(folder):
    """Makes a rename in `folder` durable (best effort: not every filesystem can)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path, text, root=None):
    """Writes `text` to `path` so that readers never see a partial file.

    The text goes to a temporary file in the same folder (".NAME.PID-XXXX.tmp",
    removed again if the write fails), is flushed to disk and moved into
    place with `os.replace`.

    Args:
        path: destination file.
        text: the full content.
        root: the study directory, to name `path` relative to it in errors.

    Raises:
        StudyWriteError: the write failed (an `OSError` naming the file and
            the cause, e.g. a full disk or a read-only directory).
    """
    folder, name = os.path.split(os.path.abspath(path))
    shown = os.path.relpath(os.path.abspath(path), os.path.abspath(root)) if root is not None else path
    tmp = os.path.join(folder, f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    data = memoryview(text.encode("utf-8"))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise StudyWriteError.of(e, "write", shown, root) from e
    try:
        try:
            while data:
                written = os.write(fd, data)
                if not written:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), tmp)
                data = data[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise StudyWriteError.of(e, "write", shown, root) from e
        raise
    _fsync_folder(folder)


def _makedirs(folder, name, root):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise StudyWriteError.of(e, "create", name, root) from e


def record_run(directory, config, outcome, worker=None):
    """Records one run as one row. Every executor's runs are recorded here.

    Args:
        directory: the study directory.
        config: the run's configuration (see `kreg.tuning.SearchSpace`).
        outcome: a `kreg.tuning.schema.Outcome`.
        worker: who trained the run.

    Returns:
        The row dict that was written (see `kreg.tuning.schema.row`).

    Raises:
        StudyWriteError: the row could not be written (an `OSError`, e.g.
            "cannot write runs/ab12.json in 'DIR': No space left on device").
    """
    values = schema.row(config, outcome, worker)
    runs = os.path.join(directory, RUNS_DIR)
    _makedirs(runs, RUNS_DIR + "/", directory)
    atomic_write_text(os.path.join(runs, values["key"] + ".json"), json.dumps(values, indent=1), root=directory)
    return values


def read_study(directory):
    """The study description in `directory`, or None if there is none.

    Raises:
        ValueError: `study.json` is no JSON object (the message names it).
    """
    path = os.path.join(directory, STUDY_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            found = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{STUDY_FILE} in {directory!r} is not valid JSON ({e})") from None
    if not isinstance(found, dict):
        raise ValueError(f"{STUDY_FILE} in {directory!r} is not a JSON object (found a {type(found).__name__})")
    return found


def write_study(directory, description):
    """Writes the study description (creating `directory`).

    Raises:
        StudyWriteError: it could not be written (an `OSError`).
    """
    _makedirs(directory, None, directory)
    atomic_write_text(os.path.join(directory, STUDY_FILE), json.dumps(description, indent=1), root=directory)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def row_problem(name, row):
    """Why the parsed file `runs/<name>` is no usable row (None if it is one)."""
    if not isinstance(row, dict):
        return f"not a JSON object but a {type(row).__name__}"
    missing = [column for column in REQUIRED_COLUMNS if column not in row]
    if missing:
        return f"lacks the columns {missing}"
    stem = name[: -len(".json")]
    if row["key"] != stem:
        return f"its key {row['key']!r} is not its file name"
    if row["status"] not in schema.STATUSES:
        return f"status {row['status']!r} is not one of {list(schema.STATUSES)}"
    if not isinstance(row["norm"], str):
        return f"norm {row['norm']!r} is not a string"
    if row["order"] is not None and not isinstance(row["order"], str):
        return f"order {row['order']!r} is neither a string nor null"
    if not _is_number(row["rate"]):
        return f"rate {row['rate']!r} is not a number"
    if not isinstance(row["seed"], int) or isinstance(row["seed"], bool):
        return f"seed {row['seed']!r} is not an integer"
    return None


class Scan(collections.namedtuple("Scan", "named_rows corrupt foreign")):
    """What `runs/` holds (see `scan_runs`).

    Attributes:
        named_rows: [(file name, row)] of the valid rows.
        corrupt: [(file name, why)] of the row files that are no valid row.
        foreign: [(name, why)] of the entries that are no row file.
    """

    @property
    def rows(self):
        """The valid rows."""
        return [row for _, row in self.named_rows]


def _is_temporary(name):
    return name.startswith(".") and name.endswith(".tmp")


def scan_runs(directory):
    """Reads `directory/runs/` without changing anything.

    Returns:
        A `Scan`: the valid rows, the row files that are not valid rows and
        why, the foreign entries. Temporary files of writers (".*.tmp") and
        the `corrupt/` folder are left out.
    """
    runs = os.path.join(directory, RUNS_DIR)
    named_rows, corrupt, foreign = [], [], []
    for name in sorted(os.listdir(runs)) if os.path.isdir(runs) else ():
        path = os.path.join(runs, name)
        if _is_temporary(name) or (name == CORRUPT_DIR and os.path.isdir(path)):
            continue
        if os.path.isdir(path):
            foreign.append((name + "/", "a folder, not a row file"))
            continue
        if not name.endswith(".json") or name.startswith("."):
            foreign.append((name, "not a row file (rows are KEY.json)"))
            continue
        try:
            with open(path, encoding="utf-8") as f:
                row = json.load(f)
        except (ValueError, UnicodeDecodeError) as e:
            corrupt.append((name, str(e)))
            continue
        except FileNotFoundError:
            continue  # gone since the listing (moved aside by another reader)
        except OSError as e:
            corrupt.append((name, f"unreadable: {e.strerror or e}"))
            continue
        problem = row_problem(name, row)
        if problem is None:
            named_rows.append((name, row))
        else:
            corrupt.append((name, problem))
    return Scan(named_rows, corrupt, foreign)


def _free_name(folder, name):
    candidate, number = name, 1
    while os.path.lexists(os.path.join(folder, candidate)):
        candidate, number = f"{name}.{number}", number + 1
    return candidate


def _set_aside(directory, corrupt):
    """Moves corrupt row files to `runs/corrupt/`, warning about each.

    Only when no other process holds the study (a running study would move
    them itself) and the directory is writable; otherwise they are left in
    place, skipped, with a warning saying why.
    """
    from kreg.tuning import directory as directory_module  # directory imports ledger

    runs = os.path.join(directory, RUNS_DIR)
    aside = os.path.join(runs, CORRUPT_DIR)
    lock, why_not = None, None
    try:
        lock = directory_module.try_lock(directory)
    except directory_module.StudyLockedError as e:
        why_not = f"another process holds the study ({directory_module.holder_text(e.holder)})"
    except OSError as e:
        why_not = f"the directory is not writable ({e.strerror or e})"
    try:
        for name, why in corrupt:
            where = f"{RUNS_DIR}/{name}"
            if why_not is None:
                try:
                    os.makedirs(aside, exist_ok=True)
                    target = _free_name(aside, name)
                    os.rename(os.path.join(runs, name), os.path.join(aside, target))
                except OSError as e:
                    reason = f"it could not be moved to {RUNS_DIR}/{CORRUPT_DIR}/ ({e.strerror or e})"
                else:
                    moved = f"{RUNS_DIR}/{CORRUPT_DIR}/" + (target if target != name else "")
                    warnings.warn(f"{where} is not a valid row ({why}): moved to {moved}; that run trains again", stacklevel=3)
                    continue
            else:
                reason = why_not
            warnings.warn(f"{where} is not a valid row ({why}): skipped and left in place, since {reason}", stacklevel=3)
    finally:
        if lock is not None:
            lock.release()


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
        """Writes the rows as CSV (empty cells for missing values), atomically.

        Raises:
            StudyWriteError: it could not be written (an `OSError`).
        """
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.columns())
        writer.writeheader()
        for row in self:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
        atomic_write_text(path, text.getvalue())

    def to_json(self, path):
        """Writes `{"study": ..., "runs": [...]}` as JSON, atomically.

        Raises:
            StudyWriteError: it could not be written (an `OSError`).
        """
        atomic_write_text(path, json.dumps({"study": self.study, "runs": list(self)}, indent=1))

    def _repr_html_(self):
        """In Jupyter: a line about the study, then the rows as a table."""
        study = self.study or {}
        title = f"{len(self)} runs" + (f" of {study.get('model')} on {study.get('dataset')}" if study else "")
        return f"<p>{html.escape(title)}</p>" + self.to_dataframe().to_html(max_rows=20)

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

    Corrupt state is named, never dropped silently: a row file that does not
    parse, lacks a required column (`REQUIRED_COLUMNS`) or whose key is not
    its file name is moved to `runs/corrupt/` with a warning (its run trains
    again when the study resumes); where the directory is not writable, or
    another process holds the study, it is skipped and left in place, with a
    warning. Foreign entries of `runs/` (not `*.json`, folders) are ignored
    with a warning; temporary files of writers silently.

    Args:
        directory: a study directory (written by `Study.run()`).

    Returns:
        A `Results` list of row dicts, sorted by configuration.

    Raises:
        FileNotFoundError: `directory` holds neither `study.json` nor `runs/`.

    Example:

    ```python
    rows = kreg.tuning.results("kreg-study")
    print(len(rows), rows[0]["final_val_loss"])
    ```
    """
    runs = os.path.join(directory, RUNS_DIR)
    try:
        study = read_study(directory)
    except ValueError as e:
        warnings.warn(f"{e}: the study's description is left out", stacklevel=2)
        study = None
    else:
        if study is None and not os.path.isdir(runs):
            raise FileNotFoundError(f"directory {directory!r} holds no kreg study (no {STUDY_FILE} and no {RUNS_DIR}/)")
    scan = scan_runs(directory)
    for name, why in scan.foreign:
        warnings.warn(f"{RUNS_DIR}/{name} in {directory!r} is {why}: ignored", stacklevel=2)
    if scan.corrupt:
        _set_aside(directory, scan.corrupt)
    rows = scan.rows
    rows.sort(key=lambda r: (str(r["norm"]), str(r["order"]), r["rate"], r["seed"], r["key"]))
    return Results(rows, study=study)
