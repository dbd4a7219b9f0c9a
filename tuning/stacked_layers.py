"""Stacked layers: K branches' layers of one kind as one layer of a pack.

A pack's tensors carry the branches on axis 1: `(B, K, ...)`. Each class
here replaces the K layers found at one place of K branches
(`kreg.tuning.stacking`) and computes, for every branch, what that branch's
own layer computes on its own slice. Each class has:

- `key(layer, input_shape)` (static): what the branches' layers must share to
  be stacked by this class, or None when the class does not stack `layer`;
- `of(sources, input_shape, name)` (class method): the stacked layer of the
  branches' layers `sources`;
- `pairs(sources)`: `(stacked variable, per-branch values)` pairs, the
  branches' variables (or constants) that `stacking.Pack` stacks into the
  pack and copies back after training.

A stacked layer never mixes branches: branch k's output depends on branch
k's slice and branch k's variables only, so each branch's gradient is its
own. Layers with constraints or regularizers are not stacked (a stacked
layer would lose them).

`STACKED` lists the classes `stacking` tries, in order.
"""

import json

import keras
from keras import layers
from keras import ops


def plain(layer, *weights):
    """Whether `layer` has no constraint and no regularizer on its `weights`
    (names such as "kernel") and no activity regularizer."""
    extras = [getattr(layer, f"{weight}_{kind}") for weight in weights for kind in ("constraint", "regularizer")]
    return all(extra is None for extra in extras) and layer.activity_regularizer is None


def activation_key(activation):
    """What stands for `activation` in a key (hashable): the name of a
    built-in Keras activation, else the callable itself. (Not
    `keras.activations.serialize`, which gives a dict for an activation
    object and imports TensorFlow whatever the backend.)"""
    name = getattr(activation, "__name__", None)
    try:
        builtin = keras.activations.get(name) is activation
    except ValueError:  # no Keras activation of that name
        builtin = False
    return name if builtin else activation


def config_of(layer, leave_out=("name",)):
    """`layer`'s configuration without the keys `leave_out`."""
    return {key: value for key, value in layer.get_config().items() if key not in leave_out}


def described(layer, leave_out=("name",)):
    """`config_of(layer, leave_out)` as a string: hashable, for keys."""
    return json.dumps(config_of(layer, leave_out), sort_keys=True, default=str)


def normalize(x, mean, variance, epsilon, gamma=None, beta=None):
    """`(x - mean) / sqrt(variance + epsilon) * gamma + beta`, computed as
    Keras' norm layers do: `x * inv + (beta - mean * inv)`. Every argument
    already broadcasts against `x`; None means no scale or no offset."""
    inv = ops.rsqrt(variance + epsilon)
    if gamma is not None:
        inv = inv * gamma
    offset = -mean * inv
    if beta is not None:
        offset = offset + beta
    return x * inv + offset


def add_scale_and_offset(layer, shape):
    """`layer`'s gamma (ones) and beta (zeros) of `shape`, each None where
    the layer has no scale or no offset."""
    gamma = layer.add_weight(shape, initializer="ones", name="gamma") if layer.scale else None
    beta = layer.add_weight(shape, initializer="zeros", name="beta") if layer.center else None
    return gamma, beta


def same_names(layer, sources, names):
    """Pairs of `layer`'s variable of each name with the sources' of that name."""
    return [(getattr(layer, name), [getattr(source, name) for source in sources]) for name in names]


def known(input_shape):
    """Whether every dimension of `input_shape` but the batch is known."""
    return all(dim is not None for dim in input_shape[1:])


def per_branch(variable, rank):
    """`variable` of shape `(K, C)` shaped to broadcast against a `(B, K, ..., C)`
    tensor of `rank` dimensions."""
    return ops.reshape(variable, (1, variable.shape[0]) + (1,) * (rank - 3) + (variable.shape[1],))


class StackedDense(layers.Layer):
    """K `Dense` layers of one shape: `(B, K, in) -> (B, K, units)`.

    Args:
        units: output units of every branch.
        activation: the branches' activation.
        use_bias: whether the branches have a bias.
    """

    def __init__(self, units, activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias

    @staticmethod
    def key(layer, input_shape):
        if type(layer) is not layers.Dense or len(input_shape) != 2:
            return None
        if not plain(layer, "kernel", "bias") or layer.lora_enabled or layer.quantization_mode is not None:
            return None
        return (layer.units, layer.use_bias, activation_key(layer.activation))

    @classmethod
    def of(cls, sources, input_shape, name):
        first = sources[0]
        return cls(first.units, first.activation, first.use_bias, name=name)

    def build(self, input_shape):
        branches, features = input_shape[1], input_shape[-1]
        self.kernel = self.add_weight((branches, features, self.units), initializer="zeros", name="kernel")
        self.bias = self.add_weight((branches, self.units), initializer="zeros", name="bias") if self.use_bias else None

    def call(self, inputs):
        x = ops.einsum("bki,kio->bko", inputs, self.kernel)
        if self.bias is not None:
            x = x + self.bias
        return self.activation(x)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def pairs(self, sources):
        pairs = [(self.kernel, [s.kernel for s in sources])]
        if self.bias is not None:
            pairs.append((self.bias, [s.bias for s in sources]))
        return pairs


class StackedBatchNormalization(layers.Layer):
    """K `BatchNormalization` layers on the last axis: `(B, K, ..., C)`.

    In training, branch k is normalized with the mean and variance of its own
    slice (over the batch and any spatial axes), and its moving statistics
    follow them as in Keras' own layer.

    Args:
        momentum: the moving statistics' momentum.
        epsilon: added to the variance.
        center: whether there is an offset (beta).
        scale: whether there is a scale (gamma).
    """

    def __init__(self, momentum=0.99, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.epsilon = epsilon
        self.center = center
        self.scale = scale

    @staticmethod
    def key(layer, input_shape):
        if type(layer) is not layers.BatchNormalization or layer.axis not in (-1, len(input_shape) - 1):
            return None
        if layer.renorm or layer.synchronized or not layer.trainable or not plain(layer, "gamma", "beta"):
            return None
        return (layer.momentum, layer.epsilon, layer.center, layer.scale)

    @classmethod
    def of(cls, sources, input_shape, name):
        first = sources[0]
        return cls(first.momentum, first.epsilon, first.center, first.scale, name=name)

    def build(self, input_shape):
        shape = (input_shape[1], input_shape[-1])
        self.gamma, self.beta = add_scale_and_offset(self, shape)
        self.moving_mean = self.add_weight(shape, initializer="zeros", trainable=False, name="moving_mean")
        self.moving_variance = self.add_weight(shape, initializer="ones", trainable=False, name="moving_variance")
        # Statistics of shape (K, C) broadcast against (B, K, ..., C).
        self._broadcast = (1, shape[0]) + (1,) * (len(input_shape) - 3) + (shape[1],)
        self._axes = [0] + list(range(2, len(input_shape) - 1))

    def call(self, inputs, training=None):
        if training and self.trainable:
            mean, variance = ops.moments(inputs, axes=self._axes)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        # The formula of ops.batch_normalization, per branch.
        return normalize(
            inputs,
            ops.reshape(mean, self._broadcast),
            ops.reshape(variance, self._broadcast),
            self.epsilon,
            None if self.gamma is None else ops.reshape(self.gamma, self._broadcast),
            None if self.beta is None else ops.reshape(self.beta, self._broadcast),
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def pairs(self, sources):
        return same_names(self, sources, ["moving_mean", "moving_variance"] + ["gamma"] * self.scale + ["beta"] * self.center)


class StackedConv(layers.Layer):
    """K `Conv1D` or `Conv2D` layers of one shape, channels last:
    `(B, K, *spatial, C) -> (B, K, *output_spatial, filters)`.

    The kernels are one `(K, *kernel_size, C / groups, filters)` variable;
    branch k's slice is convolved with branch k's kernel by
    `keras.ops.conv`, the very op of its layer alone, and the bias and the
    activation apply once to the whole stack. So K convolutions, not one:
    on CPU each single-op form trains slower (`benchmarks/stacked_conv.py`:
    a grouped convolution, the branches as groups, 34x to 39x a step; a
    loop over the branches 8x to 17x; im2col patches and one batched
    matmul 1.4x to 1.5x, and 2.5x to 3x an epoch in a pack), though each
    compiles faster.

    Args:
        filters: output channels of every branch.
        kernel_size: one kernel size per spatial axis.
        strides: one stride per spatial axis.
        padding: "valid", "same" or "causal" (`Conv1D` only).
        dilation_rate: one dilation rate per spatial axis.
        groups: the branches' groups of channels.
        activation: the branches' activation.
        use_bias: whether the branches have a bias.
    """

    def __init__(
        self, filters, kernel_size, strides, padding, dilation_rate, groups=1, activation=None, use_bias=True, **kwargs
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = tuple(kernel_size)
        self.strides = tuple(strides)
        self.padding = padding
        self.dilation_rate = tuple(dilation_rate)
        self.groups = groups
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias

    @staticmethod
    def key(layer, input_shape):
        if type(layer) not in (layers.Conv1D, layers.Conv2D) or layer.data_format != "channels_last":
            return None
        if layer.lora_enabled or not plain(layer, "kernel", "bias"):
            return None
        return (
            layer.filters,
            layer.kernel_size,
            layer.strides,
            layer.padding,
            layer.dilation_rate,
            layer.groups,
            layer.use_bias,
            activation_key(layer.activation),
        )

    @classmethod
    def of(cls, sources, input_shape, name):
        first = sources[0]
        return cls(
            first.filters,
            first.kernel_size,
            first.strides,
            first.padding,
            first.dilation_rate,
            first.groups,
            first.activation,
            first.use_bias,
            name=name,
        )

    def build(self, input_shape):
        branches, channels = input_shape[1], input_shape[-1]
        kernel_shape = (branches, *self.kernel_size, channels // self.groups, self.filters)
        self.kernel = self.add_weight(kernel_shape, initializer="zeros", name="kernel")
        self.bias = self.add_weight((branches, self.filters), initializer="zeros", name="bias") if self.use_bias else None

    def call(self, inputs):
        padding = self.padding
        if padding == "causal":  # as Conv1D: zeros before the sequence, then "valid"
            before = self.dilation_rate[0] * (self.kernel_size[0] - 1)
            inputs = ops.pad(inputs, [(0, 0), (0, 0), (before, 0), (0, 0)])
            padding = "valid"
        branches = self.kernel.shape[0]
        # unstacked, not indexed: one op forward and one backward, where
        # `kernel[k]` is K slices and K full-size gradients summed
        kernels = ops.unstack(ops.convert_to_tensor(self.kernel), num=branches)
        pairs = zip(ops.unstack(inputs, num=branches, axis=1), kernels)
        convolutions = [
            ops.conv(x, kernel, strides=self.strides, padding=padding, dilation_rate=self.dilation_rate)
            for x, kernel in pairs
        ]
        x = ops.stack(convolutions, axis=1)
        if self.bias is not None:
            x = x + per_branch(self.bias, len(x.shape))
        return self.activation(x)

    def pairs(self, sources):
        pairs = [(self.kernel, [s.kernel for s in sources])]
        if self.bias is not None:
            pairs.append((self.bias, [s.bias for s in sources]))
        return pairs


class StackedLayerNormalization(layers.Layer):
    """K `LayerNormalization` layers over the last axis: `(B, K, ..., C)`,
    each position of branch k normalized over its C values, then scaled
    and offset by branch k's gamma and beta, with the formula of
    `keras.ops.layer_normalization`.

    Args:
        epsilon: added to the variance.
        center: whether there is an offset (beta).
        scale: whether there is a scale (gamma).
    """

    def __init__(self, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon
        self.center = center
        self.scale = scale

    @staticmethod
    def key(layer, input_shape):
        # Not the deprecated `rms_scaling=True`.
        if type(layer) is not layers.LayerNormalization or layer.rms_scaling or not plain(layer, "gamma", "beta"):
            return None
        axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        if list(axes) not in ([-1], [len(input_shape) - 1]):
            return None
        return (layer.epsilon, layer.center, layer.scale)

    @classmethod
    def of(cls, sources, input_shape, name):
        first = sources[0]
        return cls(first.epsilon, first.center, first.scale, name=name)

    def build(self, input_shape):
        self.gamma, self.beta = add_scale_and_offset(self, (input_shape[1], input_shape[-1]))

    def call(self, inputs):
        mean, variance = ops.moments(inputs, axes=[-1], keepdims=True)
        rank = len(inputs.shape)
        gamma = None if self.gamma is None else per_branch(self.gamma, rank)
        beta = None if self.beta is None else per_branch(self.beta, rank)
        return normalize(inputs, mean, variance, self.epsilon, gamma, beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def pairs(self, sources):
        return same_names(self, sources, ["gamma"] * self.scale + ["beta"] * self.center)


class StackedGroupNormalization(layers.Layer):
    """K `GroupNormalization` layers on the last axis: `(B, K, ..., C)`, each
    example of branch k normalized per group of channels (over its positions
    and the group's channels), then scaled and offset by branch k's gamma
    and beta, with the formula of Keras' layer.

    Args:
        groups: number of groups of channels.
        epsilon: added to the variance.
        center: whether there is an offset (beta).
        scale: whether there is a scale (gamma).
    """

    def __init__(self, groups=32, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups
        self.epsilon = epsilon
        self.center = center
        self.scale = scale

    @staticmethod
    def key(layer, input_shape):
        if type(layer) is not layers.GroupNormalization or layer.axis not in (-1, len(input_shape) - 1):
            return None
        if not plain(layer, "gamma", "beta") or not known(input_shape):
            return None
        return (layer.groups, layer.epsilon, layer.center, layer.scale)

    @classmethod
    def of(cls, sources, input_shape, name):
        first = sources[0]
        return cls(first.groups, first.epsilon, first.center, first.scale, name=name)

    def build(self, input_shape):
        branches, channels = input_shape[1], input_shape[-1]
        self.gamma, self.beta = add_scale_and_offset(self, (branches, channels))
        # Channels split into groups: (B, K, ..., groups, C // groups).
        self._grouped = (-1, *input_shape[1:-1], self.groups, channels // self.groups)
        self._broadcast = (1, branches) + (1,) * (len(input_shape) - 3) + (self.groups, channels // self.groups)

    def call(self, inputs):
        x = ops.reshape(inputs, self._grouped)
        # Every axis but the batch, the branch and the group.
        axes = list(range(2, len(self._grouped) - 2)) + [len(self._grouped) - 1]
        mean, variance = ops.moments(x, axes=axes, keepdims=True)
        gamma = None if self.gamma is None else ops.reshape(self.gamma, self._broadcast)
        beta = None if self.beta is None else ops.reshape(self.beta, self._broadcast)
        return ops.reshape(normalize(x, mean, variance, self.epsilon, gamma, beta), (-1, *inputs.shape[1:]))

    def compute_output_shape(self, input_shape):
        return input_shape

    def pairs(self, sources):
        return same_names(self, sources, ["gamma"] * self.scale + ["beta"] * self.center)


class StackedActivation(layers.Layer):
    """K identical `Activation` layers: the activation, once, on the whole stack.

    Args:
        activation: the branches' activation.
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)

    @staticmethod
    def key(layer, input_shape):
        if type(layer) is not layers.Activation or not plain(layer):
            return None
        return (activation_key(layer.activation),)

    @classmethod
    def of(cls, sources, input_shape, name):
        return cls(sources[0].activation, name=name)

    def call(self, inputs):
        return self.activation(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def pairs(self, sources):
        return []


class StackedPerExample(layers.Layer):
    """K identical weightless layers that treat every example alone (pooling,
    `Flatten`, `Reshape`, `ZeroPadding`): one copy of the layer on the whole
    stack, its K branches folded into the batch,
    `(B, K, ...) -> (B * K, ...) -> layer -> (B, K, ...)`.

    Args:
        layer: the copy, a layer of one of the classes `FOLDED`.
    """

    FOLDED = (
        layers.MaxPooling1D,
        layers.MaxPooling2D,
        layers.AveragePooling1D,
        layers.AveragePooling2D,
        layers.GlobalAveragePooling1D,
        layers.GlobalAveragePooling2D,
        layers.GlobalMaxPooling1D,
        layers.GlobalMaxPooling2D,
        layers.Flatten,
        layers.Reshape,
        layers.ZeroPadding1D,
        layers.ZeroPadding2D,
    )

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer

    @staticmethod
    def key(layer, input_shape):
        if type(layer) not in StackedPerExample.FOLDED or not plain(layer) or not known(input_shape):
            return None
        return (type(layer).__name__, described(layer))

    @classmethod
    def of(cls, sources, input_shape, name):
        return cls(type(sources[0]).from_config(config_of(sources[0])), name=name)

    def call(self, inputs):
        outputs = self.layer(ops.reshape(inputs, (-1, *inputs.shape[2:])))
        return ops.reshape(outputs, (-1, inputs.shape[1], *outputs.shape[1:]))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:2], *self.layer.compute_output_shape((None, *input_shape[2:]))[1:])

    def pairs(self, sources):
        return []


STACKED = (
    StackedDense,
    StackedConv,
    StackedBatchNormalization,
    StackedLayerNormalization,
    StackedGroupNormalization,
    StackedActivation,
    StackedPerExample,
)
