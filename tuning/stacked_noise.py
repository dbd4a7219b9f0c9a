"""Stacked noise: K branches' kreg dropout layers as one op of a pack.

kreg's dropout layers draw their noise from a keyed generator
(`kreg.ops.keyed_random`): a pure function of the layer's seed state
`[seed, counter]` and of the element's position. So the noise of K branches
is one op over a `(K, 2)` array of seed states, and branch k's slice of it
is exactly the noise its run draws alone. The per-branch settings (the rate,
and what the layer derives from it: `branch_values()`) are variables of the
stacked layer, so a pack model also serves a later pack of other rates
(`stacking.layout`).

The classes follow the protocol of `kreg.tuning.stacked_layers`.
"""

import numpy as np
from keras import layers
from keras import ops

from kreg.layers.dropconnect_dense import DropConnectDense
from kreg.layers.training_noise import TrainingNoise
from kreg.ops.dropconnect import dropconnect_keep
from kreg.tuning.stacked_layers import described


def settings(layer):
    """What the branches' layers must share (a string): the configuration
    apart from the name, the seed and the rate, which are per-branch values."""
    return described(layer, ("name", "seed", "rate"))


def state_dtype(sources):
    """The dtype of the sources' seed states (the backend's seed dtype)."""
    dtypes = [source.seed_generator.state.dtype for source in sources if source.rate > 0]
    return dtypes[0] if dtypes else "int32"


def seed_states(sources):
    """Each source's seed state; zeros for a source of rate 0, which has no
    seed generator (its noise is the identity, whatever the key)."""
    return [source.seed_generator.state if source.rate > 0 else np.zeros(2) for source in sources]


def next_keys(states):
    """The current seed states, `(K, 2)`, after which every counter moves on
    by one (as `keras.random.SeedGenerator.next` does for one state)."""
    keys = states.value * 1  # a copy: on TensorFlow `.value` is the variable itself
    states.assign(keys + ops.cast(ops.convert_to_tensor([[0, 1]]), states.dtype))
    return keys


def per_branch(value, rank):
    """A `(K,)` vector shaped to broadcast against `(B, K, ...)` of `rank`."""
    return ops.reshape(value, (1, -1) + (1,) * (rank - 2))


class StackedNoise(layers.Layer):
    """K kreg dropout layers of one kind and settings (`TrainingNoise`): one
    draw of every branch's noise, `(B, K, ...)` in and out.

    Args:
        template: a layer of the branches' kind and settings; only its
            `noise` function and its shared settings are used.
        names: the names of the per-branch values (`branch_values()`).
        state_dtype: the dtype of the branches' seed states.
    """

    def __init__(self, template, names, state_dtype, **kwargs):
        super().__init__(**kwargs)
        # Only the function: the template itself is no sublayer. It is never
        # called, so it would stay unbuilt, and Keras (on PyTorch) re-traces
        # a model with an unbuilt layer at every evaluation.
        self.noise = template.noise
        self.names = list(names)
        self.state_dtype = state_dtype

    @staticmethod
    def key(layer, input_shape):
        if not isinstance(layer, TrainingNoise) or type(layer).call is not TrainingNoise.call:
            return None
        return (type(layer).__name__, settings(layer))

    @classmethod
    def of(cls, sources, input_shape, name):
        first = sources[0]
        template = type(first).from_config({**first.get_config(), "rate": 0.0, "name": f"{name}_template"})
        return cls(template, first.branch_values(), state_dtype(sources), name=name)

    def build(self, input_shape):
        self.rank = len(input_shape)
        branches = input_shape[1]
        self.states = self.add_weight((branches, 2), initializer="zeros", dtype=self.state_dtype, trainable=False, name="seed_states")
        self.values = [self.add_weight((branches,), initializer="zeros", trainable=False, name=name) for name in self.names]

    def pairs(self, sources):
        pairs = [(self.states, seed_states(sources))]
        for name, variable in zip(self.names, self.values):
            pairs.append((variable, [source.branch_values()[name] for source in sources]))
        return pairs

    def call(self, inputs, training=False):
        if not training:
            return inputs
        values = {name: per_branch(variable, self.rank) for name, variable in zip(self.names, self.values)}
        return self.noise(inputs, next_keys(self.states), branch_axis=1, **values)

    def compute_output_shape(self, input_shape):
        return input_shape


class StackedDropConnectDense(layers.Layer):
    """K `DropConnectDense` layers of one shape: `(B, K, in) -> (B, K, units)`;
    every branch's kernel mask comes from one draw.

    Args:
        units: output units of every branch.
        activation: the branches' activation.
        use_bias: whether the branches have a bias.
        mask: the branches' mask mode, "batch" or "example".
        state_dtype: the dtype of the branches' seed states.
    """

    def __init__(self, units, activation, use_bias, mask, state_dtype, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = activation
        self.use_bias = use_bias
        self.mask = mask
        self.state_dtype = state_dtype

    @staticmethod
    def key(layer, input_shape):
        if type(layer) is not DropConnectDense or len(input_shape) != 2:
            return None
        if layer.kernel_constraint is not None or layer.bias_constraint is not None:
            return None
        return (settings(layer),)

    @classmethod
    def of(cls, sources, input_shape, name):
        first = sources[0]
        return cls(first.units, first.activation, first.use_bias, first.mask, state_dtype(sources), name=name)

    def build(self, input_shape):
        branches, features = input_shape[1], input_shape[-1]
        self.kernel = self.add_weight((branches, features, self.units), initializer="zeros", name="kernel")
        self.bias = self.add_weight((branches, self.units), initializer="zeros", name="bias") if self.use_bias else None
        self.states = self.add_weight((branches, 2), initializer="zeros", dtype=self.state_dtype, trainable=False, name="seed_states")
        self.rates = self.add_weight((branches,), initializer="zeros", trainable=False, name="rates")

    def pairs(self, sources):
        pairs = [(self.kernel, [s.kernel for s in sources]), (self.states, seed_states(sources)), (self.rates, [s.rate for s in sources])]
        if self.bias is not None:
            pairs.append((self.bias, [s.bias for s in sources]))
        return pairs

    def call(self, inputs, training=False):
        if not training:
            x = ops.einsum("bki,kio->bko", inputs, self.kernel)
        elif self.mask == "batch":
            keys, rates = next_keys(self.states), ops.reshape(self.rates, (-1, 1, 1))
            keep = dropconnect_keep(keys, ops.shape(self.kernel), rates, branch_axis=0)
            x = ops.einsum("bki,kio->bko", inputs, self.kernel * keep * (1.0 / (1.0 - rates)))
        else:
            keys, rates = next_keys(self.states), ops.reshape(self.rates, (1, -1, 1, 1))
            keep = dropconnect_keep(keys, (ops.shape(inputs)[0], *ops.shape(self.kernel)), rates, branch_axis=1)
            x = ops.einsum("bki,bkio->bko", inputs, self.kernel * keep * (1.0 / (1.0 - rates)))
        if self.bias is not None:
            x = x + self.bias
        return x if self.activation is None else self.activation(x)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)


STACKED = (StackedNoise, StackedDropConnectDense)
