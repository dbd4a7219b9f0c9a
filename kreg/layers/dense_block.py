"""DenseBlock: a Dense layer without activation, then an ordered NormDropout."""

import keras
from keras import layers

from kreg.checks import check_positive_int
from kreg.layers.linear_block import LinearBlock


@keras.saving.register_keras_serializable(package="kreg")
class DenseBlock(LinearBlock):
    """`Dense(units)` (no activation), then `NormDropout` in the chosen order.

    Args:
        units: positive int, the output width.
        *block_args, **kwargs: the block's arguments (see `LinearBlock`):
            `order`, `norm`, `activation`, `dropout`, `rate`, `axis`, `seed`,
            `groups`, `momentum`, `epsilon` as in `NormDropout` (`seed` seeds
            the dropout), `use_bias` (None: no bias when `norm="batch"` and
            `order` starts with "norm", as batch norm's beta makes it
            redundant), base layer arguments, and further
            `keras.layers.Dense` arguments (`kernel_initializer`,
            `kernel_regularizer`, ...).

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
        units = check_positive_int("units", units)
        block_kwargs = dict(order=order, norm=norm, activation=activation, dropout=dropout, rate=rate, axis=axis, seed=seed, groups=groups, momentum=momentum, epsilon=epsilon)
        block, dense_kwargs = self.init_block(block_kwargs, use_bias, dense_kwargs)
        self.dense = layers.Dense(units, name="dense", **dense_kwargs)
        self.block = block

    def linear(self):
        return self.dense
