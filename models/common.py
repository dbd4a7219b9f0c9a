"""Pieces every zoo model shares: seeds and override checks, input, blocks and head.

A model function gets one `seed` (int or None). `Seeds` derives a distinct
seed for every initializer and dropout layer from it, in build order, so two
creations with the same seed have identical initial weights and identical
dropout masks, while different layers still draw different numbers.
"""

import numbers

import keras
from keras import layers

from kreg.checks import check_positive_int
from kreg.checks import check_seed
from kreg.layers import StandardDropout


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
            base = keras.initializers.get(identifier)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"initializer must be a Keras initializer name, got {identifier!r}"
            ) from error
        # get_config/from_config, not serialize: Keras' serializer imports
        # TensorFlow to recognize its types, even on JAX and PyTorch.
        config = base.get_config()
        if "seed" in config:
            config["seed"] = self.next()
        return type(base).from_config(config)


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


def checked_overrides(seed, **sizes):
    """`(seeds, *sizes)`: the model's `Seeds`, then its size overrides, checked.

    Args:
        seed: the `seed` override (int >= 0 or None).
        **sizes: the size overrides (`width`, `depth`, `channels`, ...), each
            an int >= 1, checked in the order given.

    Example:

    >>> seeds, width, depth = checked_overrides(7, width=8, depth=2)
    >>> seeds.seed, width, depth
    (7, 8, 2)
    """
    seeds = Seeds(seed)
    return (seeds, *(check_positive_int(name, value) for name, value in sizes.items()))


def seeded_block(layer_class, *args, seeds, initializer="he_normal", **kwargs):
    """`layer_class(*args, **kwargs)`, a kreg layer with a kernel initializer and a seed.

    The initializer draws its seed first, then the layer's own randomness
    (dropout, DropConnect): the order every zoo model uses.

    Args:
        layer_class: a kreg layer taking `kernel_initializer` and `seed`
            (`DenseBlock`, `Conv2DBlock`, `DropConnectDense`).
        *args, **kwargs: the layer's other arguments.
        seeds: the model's `Seeds`.
        initializer: the kernel initializer's name.
    """
    kernel_initializer = seeds.initializer(initializer)
    return layer_class(*args, kernel_initializer=kernel_initializer, seed=seeds.next(), **kwargs)


def softmax_model(inputs, x, num_classes, seeds, name, rate=0.0):
    """The `keras.Model` from `inputs` through the softmax head on the features `x`.

    The head: kreg's `StandardDropout(rate)` (no layer when `rate` is 0),
    then `Dense(num_classes, activation="softmax")`.
    """
    if rate > 0:
        x = StandardDropout(rate, seed=seeds.next(), name="head_dropout")(x)
    outputs = layers.Dense(
        num_classes,
        activation="softmax",
        kernel_initializer=seeds.initializer("glorot_uniform"),
        name="classifier",
    )(x)
    return keras.Model(inputs, outputs, name=name)
