"""`load`: a zoo model with its shipped weights, checked against the manifest's sha256."""

import os

from kreg.models import manifest
from kreg.models.registry import create
from kreg.models.registry import registration


class WeightsIntegrityError(ValueError):
    """A weights file does not match the sha256 recorded in its manifest."""


def load(name, weights="digits", directory=None):
    """Creates model `name` and loads the weights trained on dataset `weights`.

    The file's sha256 is checked against the manifest before Keras reads it.
    The model is built with the input shape, classes and overrides recorded
    at training time. Weights files are backend-neutral: weights trained on
    TensorFlow load on JAX and vice versa.

    Args:
        name: a registered model name.
        weights: the dataset the weights were trained on, e.g. "digits"
            (see `info(name).weights`).
        directory: folder with `manifest.json` and the weights files;
            default: the weights shipped with kreg.

    Returns:
        An uncompiled `keras.Model`.

    Raises:
        ValueError: unknown model, or no such weights (the message lists
            the available ones).
        WeightsIntegrityError: the file's sha256 differs from the manifest's.

    Example:

    >>> model = load("mlp", weights="digits")
    >>> model.output_shape
    (None, 10)
    """
    registration(name)  # unknown names: close matches first
    available = manifest.entries(name, directory)
    if weights not in available:
        listed = ", ".join(repr(k) for k in sorted(available)) or "none"
        raise ValueError(
            f"model {name!r} has no weights {weights!r}; available weights: {listed}"
        )
    entry = available[weights]
    path = os.path.join(directory or manifest.WEIGHTS_DIR, entry["file"])
    digest = manifest.sha256(path)
    if digest != entry["sha256"]:
        raise WeightsIntegrityError(
            f"weights file {path} has sha256 {digest}, but the manifest records "
            f"{entry['sha256']}: the file is corrupted or was replaced; refusing to load it "
            f"(retrain with `kreg models train {name} {entry['dataset']}`)"
        )
    model = create(
        name,
        input_shape=tuple(entry["input_shape"]),
        num_classes=entry["num_classes"],
        **entry["overrides"],
    )
    model.load_weights(path)
    return model
