"""LinearBlock: a linear layer without activation, then an ordered NormDropout.

The shared machinery of `DenseBlock` and `Conv2DBlock`.
"""


from keras import layers

from kreg.checks import check_bool
from kreg.layers.norm_dropout import NormDropout

BASE_CONFIG_KEYS = ("name", "trainable", "dtype")

# NormDropout's arguments, in the order of its signature (order, norm, ...,
# epsilon): a block takes them, with their defaults, and then `use_bias`.
def split_layer_kwargs(kwargs):
    """Splits base-layer arguments (name, dtype, trainable) off `kwargs`.

    Returns:
        `(layer_kwargs, other_kwargs)`, two new dicts.
    """
    layer_kwargs = {key: kwargs[key] for key in BASE_CONFIG_KEYS if key in kwargs}
    others = {key: value for key, value in kwargs.items() if key not in layer_kwargs}
    return layer_kwargs, others


class LinearBlock(layers.Layer):
    """A linear layer without activation, then a `NormDropout` (`.block`).

    The base of `DenseBlock` and `Conv2DBlock`. A subclass's `__init__` takes
    its linear layer's positional arguments, then `*block_args, **kwargs`,
    and calls `init_block(block_args, kwargs)` in place of `super().__init__`:
    that initializes the base layer and returns the block and the keyword
    arguments of the linear layer. It stores its linear layer first (so its
    weights come first) and then `self.block`, and returns the linear layer
    from `linear()`. Config, build, call, output shape and `parts()` are
    shared.

    A block's arguments, positional after the linear layer's or by keyword:
        order, norm, activation, dropout, rate, axis, seed, groups, momentum,
            epsilon: the `NormDropout` arguments, with its defaults.
        use_bias: None (default), True or False. None means no bias when
            batch norm directly follows the linear layer, else a bias.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`) and the
            linear layer's further arguments.
    """

    # keys of the linear layer's config that the block sets itself
    linear_owned_keys = BASE_CONFIG_KEYS + ("activation", "use_bias")

    def init_block(self, block_kwargs, use_bias, kwargs):
        """Initializes the base layer; returns `(block, linear_kwargs)`.

        Args:
            block_kwargs: the `NormDropout` arguments.
            use_bias: None, True or False (see the class docstring).
            kwargs: the subclass's other keyword arguments: the linear
                layer's and the base layer's (`name`, `dtype`, `trainable`).

        Returns:
            The `NormDropout` (for `self.block`) and the keyword arguments of
            the linear layer: the ones given, `use_bias` and `dtype`.
        """
        layer_kwargs, linear_kwargs = split_layer_kwargs(kwargs)
        super().__init__(**layer_kwargs)
        self.use_bias = None if use_bias is None else check_bool("use_bias", use_bias)
        block = NormDropout(**block_kwargs, dtype=self.dtype_policy, name="block")
        linear_kwargs["use_bias"] = (
            not block.starts_with_batch_norm if self.use_bias is None else self.use_bias
        )
        linear_kwargs["dtype"] = self.dtype_policy
        return block, linear_kwargs

    def linear(self):
        raise NotImplementedError("a LinearBlock subclass returns its linear layer")

    def parts(self):
        """The layers the block calls, in order: the linear layer, then `block.parts()`.

        Returns:
            A list of built layers, e.g. `[Dense, BatchNormalization,
            Activation, StandardDropout]` for a `DenseBlock` of order "norm-act-drop".

        Raises:
            ValueError: if the block is not built yet.

        Example:

        >>> layer = DenseBlock(4, order="norm-act", norm="batch")
        >>> layer.build((None, 3))
        >>> [part.name for part in layer.parts()]
        ['dense', 'norm', 'activation']
        """
        if not self.built:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} is not built: its parts exist once "
                "it is built (call it on data or call build(input_shape))"
            )
        return [self.linear()] + self.block.parts()

    def build(self, input_shape):
        self.linear().build(input_shape)
        self.block.build(self.linear().compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        return self.block(self.linear()(inputs), training=training)

    def compute_output_shape(self, input_shape):
        return self.linear().compute_output_shape(input_shape)

    def get_config(self):
        linear_config = self.linear().get_config()
        block_config = self.block.get_config()
        for key in self.linear_owned_keys:
            linear_config.pop(key, None)
        for key in BASE_CONFIG_KEYS:
            block_config.pop(key)
        return {**super().get_config(), **linear_config, **block_config, "use_bias": self.use_bias}
