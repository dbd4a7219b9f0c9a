"""The run schema: what one run of a study is and measures.

- `Metric`: the metric table (name, row column, direction, title), used by
  the search's objective, the progress display, the recommendation and the
  report; `metric(name)` looks one up.
- The row columns: `CONFIG_COLUMNS` (the searched dimensions), the
  `MEASURED_COLUMNS` of a run, and the bookkeeping around them (`COLUMNS`).
- `Outcome`: what training one run gives, a success or a failure as a value,
  whichever executor trained it; `row(config, outcome, worker)` turns it
  into the row the ledger writes.
"""

import dataclasses
import datetime
import math

from kreg import checks
from kreg.tuning import space


@dataclasses.dataclass(frozen=True)
class Metric:
    """One metric of a run.

    Attributes:
        name: the name users pass (`metric="val_loss"`).
        column: the row column holding it.
        direction: "min" or "max" (which is better).
        title: how reports and plots name it.
    """

    name: str
    column: str
    direction: str
    title: str


METRICS = (
    Metric("val_loss", "final_val_loss", "min", "final-epoch validation loss"),
    Metric("val_accuracy", "final_val_accuracy", "max", "final-epoch validation accuracy"),
    Metric("best_val_loss", "best_val_loss", "min", "best-epoch validation loss"),
    Metric("best_val_accuracy", "best_val_accuracy", "max", "best-epoch validation accuracy"),
    Metric("test_loss", "test_loss", "min", "test loss"),
    Metric("test_accuracy", "test_accuracy", "max", "test accuracy"),
)
# Final-epoch validation loss: on small validation sets accuracy ties across rates.
DEFAULT_METRIC = "val_loss"

CONFIG_COLUMNS = space.DIMENSIONS
# What a run measured (None where a failed run could not measure it).
MEASURED_COLUMNS = (
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
COLUMNS = ("key", "status") + CONFIG_COLUMNS + MEASURED_COLUMNS + ("worker", "finished_at", "message")
STATUSES = ("completed", "failed")


def metric(name):
    """The `Metric` called `name`.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    for known in METRICS:
        if known.name == name:
            return known
    raise checks.fail("metric", f"one of {sorted(m.name for m in METRICS)}", name)


@dataclasses.dataclass
class Outcome:
    """What training one run gave.

    Attributes:
        status: "completed" or "failed".
        metrics: the `MEASURED_COLUMNS` it measured (empty when it failed).
        message: why it failed ("" when completed).
    """

    status: str
    metrics: dict
    message: str = ""

    @classmethod
    def failed(cls, message):
        return cls("failed", {}, message)


def _clean(value):
    """JSON-safe scalar: numpy scalars to Python, non-finite floats to None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def row(config, outcome, worker=None):
    """The row of a run: its configuration, outcome and bookkeeping.

    Args:
        config: the run's configuration (`CONFIG_COLUMNS`, plus any value
            beyond them, e.g. Hyperband's "tuner/epochs").
        outcome: an `Outcome`.
        worker: who trained it ("packed", a Keras Tuner tuner id, ...).

    Returns:
        A dict with `COLUMNS` (then the configuration's extra values).
    """
    checks.check_choice("status", outcome.status, STATUSES)
    values = {"key": space.run_key(config), "status": outcome.status}
    values.update({name: _clean(config.get(name)) for name in CONFIG_COLUMNS})
    values.update({name: _clean(outcome.metrics.get(name)) for name in MEASURED_COLUMNS})
    for name in INT_COLUMNS:  # counts pass through Keras Tuner as floats
        values[name] = None if values[name] is None else int(values[name])
    values["worker"] = worker
    values["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    values["message"] = outcome.message
    values.update({name: _clean(value) for name, value in sorted(config.items()) if name not in values})
    return values
