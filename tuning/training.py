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


def fit_and_measure(model, data, epochs, batch_size, callbacks=()):
    """Trains a compiled model on `data` and measures it.

    Args:
        model: a model compiled with an "accuracy" metric.
        data: a `kreg.datasets.Dataset`.
        epochs: number of epochs.
        batch_size: training batch size.
        callbacks: further Keras callbacks (e.g. a heartbeat).

    Returns:
        The dict of `measurements`.

    Raises:
        keras_tuner.errors.FailedTrialError: the loss became NaN or infinite
            (the run is recorded as failed, the study goes on).
    """
    start = time.perf_counter()
    history = model.fit(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        callbacks=[keras.callbacks.TerminateOnNaN(), *callbacks],
    ).history
    losses = history.get("loss", []) + history.get("val_loss", [])
    if len(history.get("val_loss", [])) < epochs or not all(math.isfinite(v) for v in losses):
        raise errors.FailedTrialError(f"the loss became NaN or infinite in epoch {len(history.get('loss', []))}")
    test_loss, test_accuracy = model.evaluate(data.x_test, data.y_test, batch_size=EVAL_BATCH_SIZE, verbose=0)
    return measurements(history, test_loss, test_accuracy, time.perf_counter() - start)
