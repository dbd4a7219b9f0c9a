"""`load`: a zoo model with its shipped weights, checked against the manifest's sha256."""

import os

from kreg.models import manifest
from kreg.models.registry import create
from kreg.models.registry import registration


class WeightsIntegrityError(ValueError):
    """A weights file does not match its manifest entry: the file's sha256
    differs, or the entry's architecture (input shape, classes, overrides) is
    not the one the weights were recorded with."""


def load(name, weights="digits", directory=None):
    """Creates model `name` and loads the weights trained on dataset `weights`.

    The file's sha256 is checked against the manifest before Keras reads it,
    and so is the entry's `architecture_sha256`, which ties the weights to
    the input shape, classes and overrides recorded at training time: the
    model is built from exactly those, so an edited manifest cannot load the
    weights into another architecture. Weights files are backend-neutral: weights trained on
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
        WeightsIntegrityError: the file's sha256 differs from the manifest's,
            or the entry's architecture does not match the one its weights
            were recorded with (an edited manifest), or the entry has no
            `architecture_sha256` to check it with.

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
    recorded = entry.get("architecture_sha256")
    if recorded is None:
        raise WeightsIntegrityError(
            f"weights file {path}: its manifest entry ({name!r}, {weights!r}) has no "
            f"architecture_sha256, so the architecture the weights belong to cannot be "
            f"checked; refusing to load it (retrain with `kreg models train {name} "
            f"{entry['dataset']}`, which records it)"
        )
    actual = manifest.architecture_sha256(name, entry)
    if actual != recorded:
        fields = {field: entry[field] for field in manifest.ARCHITECTURE_FIELDS}
        raise WeightsIntegrityError(
            f"weights file {path}: the architecture in its manifest entry ({name!r}, "
            f"{weights!r}: {fields}) does not match the architecture the weights were "
            f"recorded with (architecture_sha256 {actual}, but the manifest records "
            f"{recorded}): the manifest's input_shape, num_classes or overrides were "
            f"edited; refusing to load the weights into a model they do not belong to "
            f"(restore the entry or retrain with `kreg models train {name} {entry['dataset']}`)"
        )
    model = create(
        name,
        input_shape=tuple(entry["input_shape"]),
        num_classes=entry["num_classes"],
        **entry["overrides"],
    )
    model.load_weights(path)
    return model
