"""Training one run and turning its history into the measurements of a row."""

import math
import time

import keras
import numpy as np

from kreg.tuning import schema

EVAL_BATCH_SIZE = 1024


def measurements(history, test_loss, test_accuracy, wall_time):
    """The metrics of one run from its Keras history dict.

    Args:
        history: `History.history` of the run (`loss`, `val_loss` and, where
            the run measures accuracy, `accuracy`, `val_accuracy`, per epoch).
        test_loss: loss on the test split after training.
        test_accuracy: accuracy on the test split after training (None
            without accuracy, e.g. for a regression).
        wall_time: seconds spent training and evaluating.

    Returns:
        A dict with `kreg.tuning.schema.MEASURED_COLUMNS`: final-epoch train and
        validation metrics, best-epoch validation metrics (`best_epoch`
        counts from 1, chosen by validation loss), the generalization gap
        (final train accuracy - final validation accuracy), test metrics and
        wall time; the accuracy columns None without accuracy.
    """
    val_loss = history["val_loss"]
    best = min(range(len(val_loss)), key=val_loss.__getitem__)
    accuracy, val_accuracy = history.get("accuracy"), history.get("val_accuracy")
    measured = accuracy is not None and val_accuracy is not None
    return {
        "epochs": len(val_loss),
        "final_train_loss": history["loss"][-1],
        "final_train_accuracy": accuracy[-1] if measured else None,
        "final_val_loss": val_loss[-1],
        "final_val_accuracy": val_accuracy[-1] if measured else None,
        "best_val_loss": val_loss[best],
        "best_val_accuracy": val_accuracy[best] if measured else None,
        "best_epoch": best + 1,
        "gap": accuracy[-1] - val_accuracy[-1] if measured else None,
        "test_loss": float(test_loss),
        "test_accuracy": None if test_accuracy is None else float(test_accuracy),
        "wall_time": wall_time,
    }


def epoch_order(seed, epoch, size):
    """The order in which a run with `seed` sees `size` examples in `epoch`.

    A shuffle keyed by `(seed, epoch)` alone: the same on every backend, in
    a run alone and in a pack, whatever else drew random numbers before.

    Returns:
        A permutation of `range(size)` (numpy int array).
    """
    return np.random.default_rng([seed, epoch]).permutation(size)


def training_batches(x, y, seeds, batch_size, epochs, start_epoch=0):
    """The training batches of runs with `seeds`, side by side, every epoch.

    Epoch after epoch, seed `seeds[j]`'s examples in its `epoch_order`, cut
    into batches of `batch_size` (the last one of an epoch may be smaller).
    A batch holds the j-th batch of every seed: `x` of shape
    `(b, len(seeds), *example_shape)` and `y` of shape `(b, len(seeds))`.

    Args:
        x, y: training examples and integer labels (numpy arrays).
        seeds: the runs' seeds.
        batch_size: examples per batch.
        epochs: number of epochs.
        start_epoch: the first epoch (a pack resumed from its checkpoint).

    Yields:
        `(epochs - start_epoch) * steps_per_epoch(len(x), batch_size)` batches `(x, y)`; fit
        them with that `steps_per_epoch`, so that Keras carries on through
        the epochs.
    """
    size = len(x)
    for epoch in range(start_epoch, epochs):
        order = np.stack([epoch_order(seed, epoch, size) for seed in seeds], axis=1)
        for start in range(0, size, batch_size):
            index = order[start : start + batch_size]
            yield x[index], y[index]


def steps_per_epoch(size, batch_size):
    """Batches of one epoch of `size` examples."""
    return math.ceil(size / batch_size)


def seeded_fit(model, seed, x, y, validation_data, epochs, batch_size, callbacks=()):
    """`model.fit` of one run, its batches in the order of its `seed`.

    The batch order is `epoch_order(seed, epoch)`, the one a pack
    (`kreg.tuning.packing`) gives the same run. Validation uses batches of
    `EVAL_BATCH_SIZE` (the metrics are averages over examples, whatever the
    batch).

    Args:
        model: a compiled model.
        seed: the run's seed.
        x, y: training examples and labels.
        validation_data: `(x_val, y_val)`, or None (e.g. a refit on train + validation).
        epochs: number of epochs.
        batch_size: training batch size.
        callbacks: Keras callbacks.

    Returns:
        The `History.history` dict.
    """
    batches = training_batches(x, y, [seed], batch_size, epochs)
    history = model.fit(
        ((x[:, 0], y[:, 0]) for x, y in batches),
        steps_per_epoch=steps_per_epoch(len(x), batch_size),
        shuffle=False,  # the batches come in their order
        validation_data=validation_data,
        validation_batch_size=EVAL_BATCH_SIZE,
        epochs=epochs,
        verbose=0,
        callbacks=list(callbacks),
    )
    return history.history


def failure(history, epochs):
    """Why a run failed, or "" if it did not.

    Args:
        history: a history dict with "loss" and "val_loss".
        epochs: the epochs the run should have had.

    Returns:
        "the loss became NaN or infinite in epoch E" (the first such epoch,
        from 1) or "the run stopped after E of N epochs" or "".
    """
    loss, val_loss = history.get("loss", []), history.get("val_loss", [])
    for epoch in range(max(len(loss), len(val_loss))):
        if not all(math.isfinite(v) for v in loss[epoch : epoch + 1] + val_loss[epoch : epoch + 1]):
            return f"the loss became NaN or infinite in epoch {epoch + 1}"
    if len(val_loss) < epochs:
        return f"the run stopped after {len(val_loss)} of {epochs} epochs"
    return ""


def fit_and_measure(model, data, epochs, batch_size, seed, callbacks=()):
    """Trains a compiled model on `data` and measures it.

    Args:
        model: a compiled model (an "accuracy" metric is recorded where it has one).
        data: a `kreg.datasets.Dataset`.
        epochs: number of epochs.
        batch_size: training batch size.
        seed: the run's seed: it fixes the batch order (see `seeded_fit`).
        callbacks: further Keras callbacks (e.g. a heartbeat).

    Returns:
        A `kreg.tuning.schema.Outcome`: completed with the `measurements`,
        or failed when the loss became NaN or infinite (the study records
        it and goes on).
    """
    start = time.perf_counter()
    history = seeded_fit(
        model,
        seed,
        data.x_train,
        data.y_train,
        (data.x_val, data.y_val),
        epochs,
        batch_size,
        callbacks=[keras.callbacks.TerminateOnNaN(), *callbacks],
    )
    message = failure(history, epochs)
    if message:
        return schema.Outcome.failed(message)
    test = model.evaluate(data.x_test, data.y_test, batch_size=EVAL_BATCH_SIZE, verbose=0, return_dict=True)
    return schema.Outcome("completed", measurements(history, test["loss"], test.get("accuracy"), time.perf_counter() - start))
