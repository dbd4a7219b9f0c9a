"""Conv2DBlock: a Conv2D without activation, then an ordered NormDropout."""

import keras
from keras import layers

from kreg.checks import check_positive_int
from kreg.layers.linear_block import LinearBlock


@keras.saving.register_keras_serializable(package="kreg")
class Conv2DBlock(LinearBlock):
    """`Conv2D(filters, kernel_size)` (no activation), then `NormDropout`.

    Channels last. `groups` is the group norm's number of groups; grouped
    convolution is not offered (the convolution always has `groups=1`).

    Args:
        filters: positive int, the number of output channels.
        kernel_size: int or tuple of 2 ints.
        *block_args, **kwargs: the block's arguments (see `LinearBlock`):
            the `NormDropout` ones (`dropout="spatial"` drops whole feature
            maps), `use_bias`, base layer arguments, and further
            `keras.layers.Conv2D` arguments (`strides`, `padding`,
            `dilation_rate`, `kernel_initializer`, ...; only
            `data_format="channels_last"`).

    Call arguments:
        inputs: a tensor of shape `(batch, rows, cols, channels)`.
        training: bool or None, passed to the block (dropout, batch norm).

    Attributes:
        conv: the `keras.layers.Conv2D`.
        block: the `NormDropout`.

    Returns:
        A tensor of shape `(batch, new_rows, new_cols, filters)`.

    Example:

    >>> layer = Conv2DBlock(8, 3, norm="group", groups=4, dropout="spatial",
    ...                     rate=0.1, padding="same", seed=0)
    >>> layer(np.ones((2, 6, 6, 3)), training=False).shape
    (2, 6, 6, 8)
    """

    # "groups" in the config is the norm's; the convolution's is always 1
    linear_owned_keys = LinearBlock.linear_owned_keys + ("groups",)

    def __init__(
        self,
        filters,
        kernel_size,
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
        **conv_kwargs,
    ):
        filters = check_positive_int("filters", filters)
        data_format = conv_kwargs.pop("data_format", "channels_last")
        if data_format != "channels_last":
            raise ValueError(f"data_format must be 'channels_last', got {data_format!r}")
        block_kwargs = dict(order=order, norm=norm, activation=activation, dropout=dropout, rate=rate, axis=axis, seed=seed, groups=groups, momentum=momentum, epsilon=epsilon)
        block, conv_kwargs = self.init_block(block_kwargs, use_bias, conv_kwargs)
        self.conv = layers.Conv2D(
            filters, kernel_size, data_format="channels_last", name="conv", **conv_kwargs
        )
        self.block = block

    def linear(self):
        return self.conv
