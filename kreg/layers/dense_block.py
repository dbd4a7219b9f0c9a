"""DenseBlock: a Dense layer without activation, then an ordered NormDropout."""

import keras
from keras import layers

from kreg.checks import check_positive_int
from kreg.layers.linear_block import LinearBlock
from kreg.layers.linear_block import split_layer_kwargs


@keras.saving.register_keras_serializable(package="kreg")
class DenseBlock(LinearBlock):
    """`Dense(units)` (no activation), then `NormDropout` in the chosen order.

    Args:
        units: positive int, the output width.
        order, norm, activation, dropout, rate, axis, seed, groups, momentum,
            epsilon: the `NormDropout` arguments (see there); `seed` seeds the
            dropout.
        use_bias: None, True or False. None means no bias when
            `norm="batch"` and `order` starts with "norm" (batch norm's beta
            makes the bias redundant), otherwise a bias.
        **dense_kwargs: further `keras.layers.Dense` arguments
            (`kernel_initializer`, `kernel_regularizer`, ...) and base layer
            arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: a tensor of shape `(..., input_dim)`.
        training: bool or None, passed to the block (dropout, batch norm).

    Attributes:
        dense: the `keras.layers.Dense`.
        block: the `NormDropout`.

    Returns:
        A tensor of shape `(..., units)`.

    Example:

    >>> layer = DenseBlock(16, order="norm-act-drop", rate=0.2, seed=0)
    >>> layer(np.ones((4, 8)), training=False).shape
    (4, 16)
    >>> layer.dense.use_bias
    False
    """

    def __init__(
        self,
        units,
        order="norm-act-drop",
        norm="batch",
        activation="relu",
        dropout="standard",
        rate=None,
        axis=-1,
        seed=None,
        groups=None,
        momentum=0.99,
        epsilon=1e-3,
        use_bias=None,
        **dense_kwargs,
    ):
        layer_kwargs, dense_kwargs = split_layer_kwargs(dense_kwargs)
        units = check_positive_int("units", units)
        block_kwargs = {
            "order": order,
            "norm": norm,
            "activation": activation,
            "dropout": dropout,
            "rate": rate,
            "axis": axis,
            "seed": seed,
            "groups": groups,
            "momentum": momentum,
            "epsilon": epsilon,
        }
        super().__init__(use_bias, **layer_kwargs)
        block, linear_use_bias = self.make_block(block_kwargs)
        self.dense = layers.Dense(
            units,
            use_bias=linear_use_bias,
            dtype=self.dtype_policy,
            name="dense",
            **dense_kwargs,
        )
        self.block = block

    def linear(self):
        return self.dense
