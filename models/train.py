"""Reproducible training of the zoo's shipped weights.

`train(name, dataset)` builds the model with a fixed seed, trains it with
Adam on the dataset's train split, measures accuracy on its validation and
test splits, writes `NAME-DATASET.weights.h5` and records it in
`manifest.json` (sha256 of the file and of file + architecture, settings,
metrics). Also `kreg models train`.

It writes into `./kreg-weights` unless told otherwise: never into the
installed package by default. The shipped weights are made from a source
checkout with `kreg models train NAME DATASET --out models/weights`.
"""

import os

import keras
import numpy as np

from kreg import datasets
from kreg.checks import check_path
from kreg.checks import check_positive_int
from kreg.models import manifest
from kreg.models.registry import create
from kreg.models.registry import defaults
from kreg.models.registry import registration

EPOCHS = 30
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
DIRECTORY = "kreg-weights"


def accuracy(model, x, y, batch_size=256):
    """Fraction of examples whose most probable class is the label.

    Calls the model directly in inference mode, batch by batch: for the
    zoo's small models that is faster than compiling a `predict` function.
    """
    predicted = np.concatenate([
        np.argmax(keras.ops.convert_to_numpy(model(x[i : i + batch_size], training=False)), -1)
        for i in range(0, len(x), batch_size)
    ])
    return float(np.mean(predicted == y))


def train(name, dataset="digits", epochs=EPOCHS, seed=0, directory=DIRECTORY):
    """Trains model `name` on `dataset` and records the weights in the manifest.

    Args:
        name: a registered model name.
        dataset: a `kreg.datasets.load` name; "image" models get the
            structured form (`as_images=True`: images, mnist1d sequences).
        epochs: int >= 1, epochs of Adam(learning_rate=1e-3), batch size 32.
        seed: int, seeds the split, the model (weights, dropout) and the
            shuffling (`keras.utils.set_random_seed`).
        directory: where to write the weights and manifest (created if
            missing); default `./kreg-weights`. The shipped weights live in
            `kreg.models.manifest.WEIGHTS_DIR` (`models/weights` in a source
            checkout); pass that path to update them.

    Returns:
        The manifest entry (a dict) that was written.

    Example:

    >>> entry = train("mlp", "digits", epochs=5, directory="/tmp/w")
    >>> sorted(entry)[:3]
    ['architecture_sha256', 'as_images', 'backend']
    """
    epochs = check_positive_int("epochs", epochs)
    directory = check_path("directory", DIRECTORY if directory is None else directory)
    as_images = registration(name).input == "image"
    data = datasets.load(dataset, seed=seed, as_images=as_images)
    keras.utils.set_random_seed(seed)
    overrides = {**defaults(name), "seed": seed}
    model = create(name, data.input_shape, data.num_classes, **overrides)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss="sparse_categorical_crossentropy",
    )
    model.fit(data.x_train, data.y_train, batch_size=BATCH_SIZE, epochs=epochs, verbose=0)
    file = f"{name}-{dataset}.weights.h5"
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, file)
    # A fresh, uncompiled twin holds only the model's weights: saving the
    # trained model itself would also write Adam's slots (3x the size).
    weights_only = create(name, data.input_shape, data.num_classes, **overrides)
    weights_only.set_weights(model.get_weights())
    weights_only.save_weights(path)
    entry = {
        "file": file,
        "sha256": manifest.sha256(path),
        "dataset": dataset,
        "as_images": as_images,
        "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
        "overrides": overrides,
        "epochs": epochs,
        "batch_size": BATCH_SIZE,
        "optimizer": f"Adam(learning_rate={LEARNING_RATE})",
        "loss": "sparse_categorical_crossentropy",
        "seed": seed,
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "val_accuracy": accuracy(model, data.x_val, data.y_val),
        "test_accuracy": accuracy(model, data.x_test, data.y_test),
        "test_examples": len(data.y_test),
    }
    entry["architecture_sha256"] = manifest.architecture_sha256(name, entry)
    manifest.update(name, dataset, entry, directory)
    return entry
