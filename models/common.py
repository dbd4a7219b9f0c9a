"""Pieces every zoo model shares: per-layer seeds, input checks, input and head.

A model function gets one `seed` (int or None). `Seeds` derives a distinct
seed for every initializer and dropout layer from it, in build order, so two
creations with the same seed have identical initial weights and identical
dropout masks, while different layers still draw different numbers.
"""

import numbers

import keras
from keras import layers

from kreg.checks import check_seed


class Seeds:
    """Hands out distinct per-layer seeds derived from one model seed.

    Args:
        seed: int >= 0 or None. None hands out None everywhere (unseeded layers).

    Example:

    >>> seeds = Seeds(7)
    >>> seeds.next(), seeds.next()
    (7000, 7001)
    """

    def __init__(self, seed):
        self.seed = check_seed("seed", seed)
        self.count = 0

    def next(self):
        """The next layer's seed, or None for an unseeded model."""
        if self.seed is None:
            return None
        self.count += 1
        # 1000 seeds per model seed: seeds 1 and 2 never share a layer seed.
        return int(self.seed) * 1000 + self.count - 1

    def initializer(self, identifier):
        """A fresh Keras initializer for `identifier`, seeded when it draws randomly.

        Args:
            identifier: an initializer name such as "he_normal" or "lecun_normal".
        """
        try:
            config = keras.initializers.serialize(keras.initializers.get(identifier))
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"initializer must be a Keras initializer name, got {identifier!r}"
            ) from error
        if "seed" in config["config"]:
            config["config"]["seed"] = self.next()
        return keras.initializers.deserialize(config)


def check_input_shape(input_shape):
    """Returns `input_shape` as a tuple of positive ints (one example, no batch axis)."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if not shape or any(
        isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1 for d in shape
    ):
        raise ValueError(
            "input_shape must be a non-empty tuple of positive ints (one example, "
            f"without the batch axis), got {input_shape!r}"
        )
    return tuple(int(d) for d in shape)


def check_image_shape(model, input_shape, downsamplings):
    """Checks that an image model can take `input_shape`.

    Args:
        model: the model's name, for the message.
        input_shape: the checked shape of one example.
        downsamplings: how many times the model halves height and width.

    Raises:
        ValueError: unless the shape is (height, width, channels) with height
            and width at least `2 ** downsamplings`.
    """
    smallest = 2**downsamplings
    if len(input_shape) != 3 or min(input_shape[:2]) < smallest:
        raise ValueError(
            f"{model} needs input_shape (height, width, channels) with height and width "
            f">= {smallest} (it halves them {downsamplings} times), got {input_shape}"
        )


def flat_input(input_shape):
    """`(inputs, x)`: a `keras.Input`, flattened when an example has rank > 1."""
    inputs = keras.Input(input_shape, name="inputs")
    x = layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    return inputs, x


def classifier(x, num_classes, seeds):
    """The softmax head: `Dense(num_classes, activation="softmax")`."""
    return layers.Dense(
        num_classes,
        activation="softmax",
        kernel_initializer=seeds.initializer("glorot_uniform"),
        name="classifier",
    )(x)
