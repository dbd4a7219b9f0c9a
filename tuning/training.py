"""Training one run and turning its history into the measurements of a row."""

import math
import time

import keras
from keras_tuner import errors

EVAL_BATCH_SIZE = 1024


def measurements(history, test_loss, test_accuracy, wall_time):
    """The metrics of one run from its Keras history dict.

    Args:
        history: `History.history` of the run (`loss`, `accuracy`,
            `val_loss`, `val_accuracy` per epoch).
        test_loss: loss on the test split after training.
        test_accuracy: accuracy on the test split after training.
        wall_time: seconds spent training and evaluating.

    Returns:
        A dict with `kreg.tuning.ledger.METRIC_COLUMNS`: final-epoch train and
        validation metrics, best-epoch validation metrics (`best_epoch`
        counts from 1, chosen by validation loss), the generalization gap
        (final train accuracy - final validation accuracy), test metrics and
        wall time.
    """
    val_loss = history["val_loss"]
    best = min(range(len(val_loss)), key=val_loss.__getitem__)
    return {
        "epochs": len(val_loss),
        "final_train_loss": history["loss"][-1],
        "final_train_accuracy": history["accuracy"][-1],
        "final_val_loss": val_loss[-1],
        "final_val_accuracy": history["val_accuracy"][-1],
        "best_val_loss": val_loss[best],
        "best_val_accuracy": history["val_accuracy"][best],
        "best_epoch": best + 1,
        "gap": history["accuracy"][-1] - history["val_accuracy"][-1],
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "wall_time": wall_time,
    }


def seeded_fit(model, seed, x, y, validation_data, epochs, batch_size, callbacks=()):
    """`model.fit` whose batch order depends on `seed` alone.

    Keras shuffles each epoch with the global random state (numpy on JAX, a
    TensorFlow op on TensorFlow). A model's first `fit` on JAX also draws one
    hidden permutation (it peeks at a batch to build its metrics), later fits
    do not. So: build the metrics first by evaluating the first validation
    batch (no random draw, no state change), then
    `keras.utils.set_random_seed(seed)`, then fit. Every fit, of a run alone
    or of a pack (`kreg.tuning.packing`), first or reused, then sees the same
    batches for the same seed.

    Validation and the probe use batches of `EVAL_BATCH_SIZE` (the metrics
    are averages over examples, whatever the batch): fewer steps, and one
    compiled evaluation step for validation and test.

    Args:
        model: a compiled model.
        seed: the run's seed.
        x, y: training data (`y` may be a dict of targets).
        validation_data: `(x_val, y_val)`.
        epochs: number of epochs.
        batch_size: training batch size.
        callbacks: Keras callbacks.

    Returns:
        The `History.history` dict.
    """
    first_batch = keras.tree.map_structure(lambda a: a[:EVAL_BATCH_SIZE], validation_data)
    model.evaluate(*first_batch, batch_size=EVAL_BATCH_SIZE, verbose=0)
    keras.utils.set_random_seed(seed)
    history = model.fit(
        x,
        y,
        validation_data=validation_data,
        validation_batch_size=EVAL_BATCH_SIZE,
        epochs=epochs,
        batch_size=batch_size,
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
        model: a model compiled with an "accuracy" metric.
        data: a `kreg.datasets.Dataset`.
        epochs: number of epochs.
        batch_size: training batch size.
        seed: the run's seed: it fixes the batch order (see `seeded_fit`).
        callbacks: further Keras callbacks (e.g. a heartbeat).

    Returns:
        The dict of `measurements`.

    Raises:
        keras_tuner.errors.FailedTrialError: the loss became NaN or infinite
            (the run is recorded as failed, the study goes on).
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
        raise errors.FailedTrialError(message)
    test_loss, test_accuracy = model.evaluate(data.x_test, data.y_test, batch_size=EVAL_BATCH_SIZE, verbose=0)
    return measurements(history, test_loss, test_accuracy, time.perf_counter() - start)
