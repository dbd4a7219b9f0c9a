"""DropConnectDense: a densely connected layer that drops weights in training."""

import keras
from keras import activations
from keras import constraints
from keras import initializers
from keras import layers
from keras import ops
from keras import regularizers

from kreg.checks import check_bool
from kreg.checks import check_choice
from kreg.checks import check_positive_int
from kreg.checks import check_rate
from kreg.checks import check_seed
from kreg.ops.dropconnect import MASK_MODES
from kreg.ops.dropconnect import dropconnect_matmul


@keras.saving.register_keras_serializable(package="kreg")
class DropConnectDense(layers.Layer):
    """`Dense` with DropConnect (Wan et al. 2013) on its kernel.

    In training it computes `activation(x @ (kernel * M / (1 - rate)) + bias)`
    with a fresh keep mask `M ~ Bernoulli(1 - rate)` on the kernel's entries;
    at inference it computes the expectation, `activation(x @ kernel + bias)`,
    exactly like `keras.layers.Dense`. The masked kernel is a temporary
    tensor: the kernel variable is only ever changed by the optimizer. The
    bias is not dropped. Not to be confused with EfficientNet's "drop
    connect", which is stochastic depth.

    Args:
        units: positive int, the output size.
        rate: float in [0, 1), the probability of dropping each weight.
        activation: activation function or its name; None means linear.
        use_bias: bool, whether to add a bias vector.
        mask: `"batch"` draws one `(in, units)` mask per training step,
            shared by every row of the batch (cheap; inputs of any rank >= 2).
            `"example"` draws one mask per example, i.e. per index of the
            first axis, shared by that example's inner axes such as timesteps
            (memory `batch * in * units`; inputs of any rank >= 2).
        seed: int >= 0 or None, the seed of the masks.
        kernel_initializer: initializer of the `(in, units)` kernel.
        bias_initializer: initializer of the `(units,)` bias.
        kernel_regularizer: regularizer of the kernel, or None.
        bias_regularizer: regularizer of the bias, or None.
        kernel_constraint: constraint of the kernel, or None.
        bias_constraint: constraint of the bias, or None.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: tensor of shape `(batch, ..., in)`; like `Dense`, the layer
            acts on the last axis.
        training: Python bool; True drops weights, False uses the full kernel.

    Example:

    >>> layer = DropConnectDense(16, rate=0.5, activation="relu", seed=0)
    >>> x = keras.random.normal((8, 4))
    >>> layer(x, training=True).shape
    (8, 16)
    """

    def __init__(
        self,
        units,
        rate,
        activation=None,
        use_bias=True,
        mask="batch",
        seed=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.rate = check_rate("rate", rate)
        self.activation = activations.get(activation)
        self.use_bias = check_bool("use_bias", use_bias)
        self.mask = check_choice("mask", mask, MASK_MODES)
        self.seed = check_seed("seed", seed)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        if self.rate > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.input_spec = layers.InputSpec(min_ndim=2)
        self.supports_masking = True

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_dim, self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self.input_spec = layers.InputSpec(min_ndim=2, axes={-1: input_dim})

    def call(self, inputs, training=False):
        kernel = ops.cast(self.kernel, self.compute_dtype)
        if training and self.rate > 0:
            outputs = dropconnect_matmul(
                inputs, kernel, self.rate, mask=self.mask, seed=self.seed_generator
            )
        else:
            outputs = ops.matmul(inputs, kernel)
        if self.bias is not None:
            outputs = ops.add(outputs, ops.cast(self.bias, self.compute_dtype))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = {
            "units": self.units,
            "rate": self.rate,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "mask": self.mask,
            "seed": self.seed,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }
        return {**super().get_config(), **config}
