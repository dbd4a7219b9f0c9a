"""What the inference tools share: model checks, batching, finding BN layers."""

import keras
import numpy as np
from keras import tree

from kreg.checks import check_positive_int
from kreg.keras_compat import flatten_layers


def check_model(model):
    """Raises `TypeError` unless `model` is a `keras.Model`; returns it."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"model must be a keras.Model, got {type(model).__name__} {model!r:.80}"
        )
    return model


def check_batch_size(batch_size, allow_none):
    """Returns `batch_size` as an int (or None where allowed), else raises."""
    if batch_size is None and allow_none:
        return None
    return check_positive_int("batch_size", batch_size)


def batchnorm_layers(model):
    """Every `BatchNormalization` in `model`, nested blocks and models included."""
    return [
        layer
        for layer in flatten_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def as_arrays(x):
    """Converts every leaf of `x` (an array or a list/dict of arrays) to numpy."""
    return tree.map_structure(np.asarray, x)


def num_examples(x):
    """The length of the first axis of `x`'s leaves."""
    return len(tree.flatten(x)[0])


def check_input_shape(model, x, name):
    """Raises `ValueError` if the arrays `x` do not fit the model's inputs.

    Models without a known input (subclassed, unbuilt) are not checked here:
    Keras reports the mismatch when the model is called.
    """
    inputs = getattr(model, "inputs", None)
    if not inputs:
        return
    leaves = tree.flatten(x)
    if len(leaves) != len(inputs):
        raise ValueError(
            f"{name} has {len(leaves)} input array(s), the model takes {len(inputs)}"
        )
    for leaf, expected in zip(leaves, inputs):
        shape, wanted = tuple(leaf.shape), tuple(expected.shape)
        fits = len(shape) == len(wanted) and all(
            w is None or s == w for s, w in zip(shape[1:], wanted[1:])
        )
        if not fits:
            raise ValueError(
                f"{name} has shape {shape}, the model expects {wanted} "
                "(None: any size)"
            )


def slices(x, batch_size):
    """Yields consecutive batches of at most `batch_size` examples of `x`."""
    total = num_examples(x)
    for start in range(0, total, batch_size):
        yield tree.map_structure(lambda leaf: leaf[start : start + batch_size], x)
