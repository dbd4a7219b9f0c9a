"""Hand-stacked Keras references for NormDropout and the blocks built on it."""

import keras
import numpy as np

from kreg.layers.linear_block import LinearBlock

GROUPS = 4  # groups of the group-norm reference; the tests use 8 features


def apply_in_order(x, order, parts, training):
    """The hand-stacked reference: `parts[token]` applied in `order`, as numpy."""
    for token in order:
        layer = parts[token]
        x = layer(x) if token == "act" else layer(x, training=training)
    return keras.ops.convert_to_numpy(x)  # torch: a tensor with grad has no __array__


def reference_norm(norm):
    return {
        "batch": keras.layers.BatchNormalization,
        "layer": keras.layers.LayerNormalization,
        "group": lambda: keras.layers.GroupNormalization(groups=GROUPS),
    }[norm]()


def random_weights(layer, rng):
    """Values in [0.5, 2) for every weight: gamma, beta, moving mean and variance."""
    return [rng.uniform(0.5, 2.0, tuple(w.shape)).astype("float32") for w in layer.weights]


def assert_block_equals_reference(block, linear, parts, x, order, rng, atol):
    """Checks a DenseBlock/Conv2DBlock against its hand-stacked reference.

    Gives the block's linear layer and `linear` the same random weights, the
    block's norm and `parts["norm"]` the same random statistics, then compares
    `block(x)` with `parts` applied in `order` to `linear(x)`, in training and
    inference mode.
    """
    linear.build(x.shape)
    linear_weights = [rng.normal(0.0, 0.5, tuple(w.shape)).astype("float32") for w in linear.weights]
    parts["norm"].build(linear.compute_output_shape(x.shape))
    norm_weights = random_weights(parts["norm"], rng)
    for target, weights in ((linear, linear_weights), (block.linear(), linear_weights),
                            (parts["norm"], norm_weights), (block.block.norm_layer, norm_weights)):
        target.set_weights(weights)
    for training in (True, False):
        expected = apply_in_order(linear(x), order.split("-"), parts, training)
        actual = keras.ops.convert_to_numpy(block(x, training=training))
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=atol)


@keras.saving.register_keras_serializable(package="kreg_tests")
class Conv1DBlock(LinearBlock):
    """A LinearBlock written only from its documented contract (no kreg code knows it)."""

    linear_owned_keys = LinearBlock.linear_owned_keys + ("groups",)  # the norm's

    block_names = ("order", "norm", "activation", "dropout", "rate", "axis", "seed", "groups", "momentum", "epsilon")

    def __init__(self, filters, kernel_size, use_bias=None, **kwargs):
        block_kwargs = {name: kwargs.pop(name) for name in self.block_names if name in kwargs}
        block, conv_kwargs = self.init_block(block_kwargs, use_bias, kwargs)
        self.conv = keras.layers.Conv1D(filters, kernel_size, name="conv", **conv_kwargs)
        self.block = block

    def linear(self):
        return self.conv
