"""Constructed study rows for the recommendation and report tests.

`paired_rows` builds the runs of a grid where, for every seed, the metric is
a parabola in the rate with its minimum at a chosen rate: so the best rate of
each seed, and hence each paired difference, is known exactly.
"""

from kreg.tuning import ledger
from kreg.tuning import schema
from kreg.tuning import space

RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def _row(norm, order, rate, seed, value):
    config = {"norm": norm, "order": order, "rate": rate, "seed": seed}
    row = {"key": space.run_key(config), "status": "completed", **config}
    row.update({name: None for name in schema.MEASURED_COLUMNS})
    row.update(
        epochs=3,
        final_val_loss=value,
        best_val_loss=value,
        final_val_accuracy=1.0 - value,
        best_val_accuracy=1.0 - value,
        test_loss=value,
        test_accuracy=1.0 - value,
        final_train_accuracy=1.0,
        gap=value,
        wall_time=0.1,
    )
    row.update(worker="tuner0", finished_at="2026-01-01T00:00:00+00:00", message="")
    return row


def paired_rows(best_without, best_with, rates=RATES, order="norm-act-drop", other_order=None):
    """Rows whose per-seed best rates are `best_without[s]` / `best_with[s]`.

    Args:
        best_without: per seed, the best rate without normalization.
        best_with: per seed, the best rate with batch norm (same length).
        rates: the grid.
        order: the block order of the batch-norm runs.
        other_order: optionally a second order, uniformly worse by 1.0.
    """
    rows = ledger.Results(study={"model": "mlp", "dataset": "digits", "tuner": "grid", "epochs": 3, "batch_size": 8})
    for seed, (r0, r1) in enumerate(zip(best_without, best_with)):
        for rate in rates:
            # Parabolas with distinct offsets: without norm a bit worse.
            rows.append(_row("none", None, rate, seed, 0.5 + (rate - r0) ** 2 + 0.01 * seed))
            rows.append(_row("batch", order, rate, seed, 0.4 + (rate - r1) ** 2 + 0.01 * seed))
            if other_order:
                rows.append(_row("batch", other_order, rate, seed, 1.4 + (rate - r1) ** 2))
    return rows
