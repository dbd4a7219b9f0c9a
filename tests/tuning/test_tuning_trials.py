"""The run-by-run executor's heartbeat: a worker's sign of life for the chief."""

import keras
import numpy as np

from kreg.tuning import trials


def fit_with(heartbeat, epochs=2):
    """A tiny model trained on 10 examples in batches of 2 (5 a epoch)."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((10, 3), "float32"), np.zeros((10, 1), "float32")
    model.fit(x, y, batch_size=2, epochs=epochs, verbose=0, callbacks=[heartbeat])


def test_a_heartbeat_beats_at_the_start_and_after_every_epoch():
    beats = []
    fit_with(trials.Heartbeat(beats.append, interval=3600))
    assert beats == [0, 0, 1]


def test_within_an_epoch_a_heartbeat_beats_once_its_interval_has_passed():
    # Interval 0: before every batch too, with the epoch under way.
    beats = []
    fit_with(trials.Heartbeat(beats.append, interval=0))
    assert beats == [0] + [0] * 5 + [0] + [1] * 5 + [1]
