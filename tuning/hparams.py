"""A study for TensorBoard's HParams dashboard (table and parallel coordinates).

`write_hparams(rows, logdir)` writes the rows of a study with TensorBoard's
own hparams API (`tensorboard.plugins.hparams.api`), so that
`tensorboard --logdir LOGDIR` shows one session per run:

```
LOGDIR/
  events.out.tfevents.*.kreg-hparams   the experiment: hparams_config (domains, metrics)
  <key>/events.out.tfevents.*          one run: hp.hparams(..., trial_id=key),
                                       its final metrics as scalars at step = epochs,
                                       and its session end (status)
```

TensorFlow (always installed, whatever the Keras backend) is imported only
when the function is called, so `import kreg.tuning` stays light.
"""

import datetime
import math
import os
import shutil
import tempfile

from kreg.tuning import schema

# The root event file of the experiment carries this suffix: a rewrite
# replaces exactly that file and leaves other event files in LOGDIR alone.
CONFIG_SUFFIX = ".kreg-hparams"
_TMP_PREFIX = ".kreg-hparams-tmp-"

# Metrics beyond the `schema.METRICS` table: (row column, display name).
_EXTRA_METRICS = (
    ("final_train_loss", "final-epoch training loss"),
    ("final_train_accuracy", "final-epoch training accuracy"),
    ("gap", "generalization gap (train - validation accuracy)"),
    ("best_epoch", "best epoch (by validation loss)"),
    ("wall_time", "wall time (s)"),
)
# Every metric column the dashboard may show, with its display name.
METRIC_COLUMNS = tuple((m.column, m.title) for m in schema.METRICS) + _EXTRA_METRICS

_SCALAR_TYPES = (bool, int, float, str)


def _hparam_value(name, value):
    """A row value as an hparam value (None: no value for this run)."""
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if name in ("norm", "order"):
        return "none" if value is None else str(value)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if name == "seed":
        return int(value)
    if name == "rate":
        return round(float(value), 6)
    return value if isinstance(value, _SCALAR_TYPES) else str(value)


def _domain_values(name, values):
    """The domain of an hparam: its distinct values, one Python type."""
    values = {v for v in values if v is not None}
    if name == "rate":
        return float, sorted(values)
    if name == "seed":
        return int, sorted(values)
    if all(isinstance(v, bool) for v in values) and values:
        return bool, sorted(values)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and values:
        return int, sorted(values)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) and values:
        return float, sorted(float(v) for v in values)
    return str, sorted(str(v) for v in values)


def _grid_values(study):
    """The study's grid (from its description), hparam name -> values."""
    study = study or {}
    grid = {"norm": [], "order": [], "rate": [], "seed": []}
    norms = study.get("norms") or []
    grid["norm"] = ["none" if n is None else str(n) for n in norms]
    if study.get("orders"):
        grid["order"] = [str(o) for o in study["orders"]]
        if "none" in grid["norm"]:
            grid["order"].append("none")
    grid["rate"] = [round(float(r), 6) for r in study.get("rates") or []]
    seeds = study.get("seeds")
    if isinstance(seeds, list):
        grid["seed"] = [int(s) for s in seeds]
    return grid


def _start_time(row):
    """When the run started (finished_at - wall_time), or None."""
    try:
        finished = datetime.datetime.fromisoformat(str(row.get("finished_at"))).timestamp()
    except ValueError:
        return None
    wall = row.get("wall_time")
    return finished - wall if isinstance(wall, (int, float)) and math.isfinite(wall) else finished


def _end_time(row):
    try:
        return datetime.datetime.fromisoformat(str(row.get("finished_at"))).timestamp()
    except ValueError:
        return None


def _check_key(key, seen):
    if not isinstance(key, str) or not key or key.startswith(".") or os.sep in key or (os.altsep and os.altsep in key):
        raise ValueError(f"row key must be a plain directory name, got {key!r}")
    if key in seen:
        raise ValueError(f"two rows share the key {key!r}: one session per run")
    seen.add(key)


def write_hparams(rows, logdir):
    """Writes a study for TensorBoard's HParams dashboard.

    `tensorboard --logdir LOGDIR` then shows the HParams table and parallel
    coordinates: one session per run, its hyperparameters `norm`, `order`
    ("none" where it does not apply), `rate`, `seed` (plus any extra searched
    dimension found in the rows, such as Hyperband's "tuner/epochs") and its
    final metrics.

    Layout: `LOGDIR/` holds the experiment (`hp.hparams_config`) in one event
    file ending in ".kreg-hparams": every hyperparameter with its
    `hp.Discrete` domain (the values of the rows, plus the study's grid when
    `rows.study` describes it) and every metric column that at least one
    row measured (the `schema.METRICS` columns, `final_train_*`, `gap`,
    `best_epoch`, `wall_time`) as an `hp.Metric` whose tag is the row column
    (e.g. "final_val_loss") and whose display name is its title. Then
    `LOGDIR/<key>/` per run (key = the row key): `hp.hparams({...},
    trial_id=key)`, each measured metric as a `tf.summary.scalar` (float32,
    the only scalar type every TensorBoard reader shows: about 7 significant
    digits) at step = the run's `epochs`, and the session end status
    (success, or failure). Failed runs get their
    hyperparameters and a failure status but no metrics.

    Writing again replaces, never duplicates: each run's directory and the
    experiment file are written to a temporary folder in LOGDIR and moved
    into place over the previous ones. Other files and folders in LOGDIR
    (e.g. Keras TensorBoard logs, runs not in `rows`) are left as they are.

    Args:
        rows: a `kreg.tuning.Results` (or any list of row dicts, see
            `kreg.tuning.schema.COLUMNS`); `rows.study`, when there, widens
            the domains to the whole grid.
        logdir: the TensorBoard log directory (created if needed).

    Returns:
        The number of sessions written (one per row).

    Raises:
        ValueError: a row key that is not a plain directory name, or two
            rows with the same key.

    Example:

    ```python
    rows = kreg.tuning.results("kreg-study")
    write_hparams(rows, "kreg-study/hparams")   # then: tensorboard --logdir kreg-study/hparams
    ```
    """
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp
    from tensorboard.plugins.hparams import api_pb2
    from tensorboard.plugins.hparams import summary as hp_summary

    study = getattr(rows, "study", None)
    rows = list(rows)
    seen = set()
    for row in rows:
        _check_key(row.get("key"), seen)

    # The hyperparameters: the four dimensions, then any extra searched one.
    extra = sorted({name for row in rows for name in row} - set(schema.COLUMNS))
    names = list(schema.CONFIG_COLUMNS) + extra
    run_values = [{name: _hparam_value(name, row.get(name)) for name in names} for row in rows]
    grid = _grid_values(study if isinstance(study, dict) else None)
    hparams = {}
    for name in names:
        dtype, domain = _domain_values(name, [v[name] for v in run_values] + grid.get(name, []))
        hparams[name] = hp.HParam(name, hp.Discrete(domain, dtype=dtype))
    for v in run_values:  # values as the domain's type (an int in a float domain)
        for name in names:
            if v[name] is not None and hparams[name].domain.dtype is not type(v[name]):
                v[name] = hparams[name].domain.dtype(v[name])

    # The metrics: every metric column some completed row measured.
    measured = [
        (column, title)
        for column, title in METRIC_COLUMNS
        if any(row.get("status") != "failed" and _metric_value(row.get(column)) is not None for row in rows)
    ]
    metrics = [hp.Metric(column, display_name=title) for column, title in measured]

    os.makedirs(logdir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=logdir)
    try:
        # The experiment, written aside, then moved over the previous one.
        config_dir = os.path.join(tmp, "config")
        writer = tf.summary.create_file_writer(config_dir, filename_suffix=CONFIG_SUFFIX)
        with writer.as_default():
            hp.hparams_config(hparams=list(hparams.values()), metrics=metrics)
        writer.close()
        for name in os.listdir(logdir):
            if name.startswith("events.out.tfevents.") and name.endswith(CONFIG_SUFFIX):
                os.remove(os.path.join(logdir, name))
        for name in os.listdir(config_dir):
            os.replace(os.path.join(config_dir, name), os.path.join(logdir, name))

        for row, v in zip(rows, run_values):
            key = row["key"]
            session_dir = os.path.join(tmp, key)
            failed = row.get("status") == "failed"
            writer = tf.summary.create_file_writer(session_dir)
            with writer.as_default():
                hp.hparams(
                    {hparams[name]: value for name, value in v.items() if value is not None},
                    trial_id=key,
                    start_time_secs=_start_time(row),
                )
                if not failed:
                    step = row.get("epochs") if isinstance(row.get("epochs"), int) else 0
                    for column, title in measured:
                        value = _metric_value(row.get(column))
                        if value is not None:
                            # float32, as tf.summary.scalar writes it: TensorBoard's
                            # Rust data server (the default reader) drops float64 scalars.
                            tf.summary.scalar(column, value, step=step, description=title)
                status = api_pb2.STATUS_FAILURE if failed else api_pb2.STATUS_SUCCESS
                end = hp_summary.session_end_pb(status, end_time_secs=_end_time(row))
                tf.summary.experimental.write_raw_pb(end.SerializeToString(), step=0)
            writer.close()
            final = os.path.join(logdir, key)
            if os.path.isdir(final) and not os.path.islink(final):
                shutil.rmtree(final)
            elif os.path.lexists(final):
                os.remove(final)
            os.replace(session_dir, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return len(rows)


def _metric_value(value):
    """A measured value as a float, or None (not measured, or not finite)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None
