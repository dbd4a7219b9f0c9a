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

`STACKED` lists the classes `stacking` tries, in order.
"""

import keras
from keras import layers
from keras import ops


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
        plain = layer.kernel_constraint is None and layer.bias_constraint is None
        if not plain or layer.lora_enabled or layer.quantization_mode is not None:
            return None
        return (layer.units, layer.use_bias, keras.activations.serialize(layer.activation))

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
        plain = not layer.renorm and not layer.synchronized and layer.trainable
        if not plain or layer.gamma_constraint is not None or layer.beta_constraint is not None:
            return None
        return (layer.momentum, layer.epsilon, layer.center, layer.scale)

    @classmethod
    def of(cls, sources, input_shape, name):
        first = sources[0]
        return cls(first.momentum, first.epsilon, first.center, first.scale, name=name)

    def build(self, input_shape):
        shape = (input_shape[1], input_shape[-1])
        self.gamma = self.add_weight(shape, initializer="ones", name="gamma") if self.scale else None
        self.beta = self.add_weight(shape, initializer="zeros", name="beta") if self.center else None
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
        inv = ops.rsqrt(ops.reshape(variance, self._broadcast) + self.epsilon)
        if self.gamma is not None:
            inv = inv * ops.reshape(self.gamma, self._broadcast)
        offset = -ops.reshape(mean, self._broadcast) * inv
        if self.beta is not None:
            offset = offset + ops.reshape(self.beta, self._broadcast)
        return inputs * inv + offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def pairs(self, sources):
        names = ["moving_mean", "moving_variance"] + ["gamma"] * self.scale + ["beta"] * self.center
        return [(getattr(self, name), [getattr(s, name) for s in sources]) for name in names]


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
        if type(layer) is not layers.Activation:
            return None
        return (keras.activations.serialize(layer.activation),)

    @classmethod
    def of(cls, sources, input_shape, name):
        return cls(sources[0].activation, name=name)

    def call(self, inputs):
        return self.activation(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def pairs(self, sources):
        return []


STACKED = (StackedDense, StackedBatchNormalization, StackedActivation)
