"""The model of a pack: the models of K runs side by side as one model.

`pack_model(branches, columns, num_seeds)` turns K built models (the branches,
one per run) into one Keras model. Its input holds one batch per seed,
shape `(B, seeds, *example)`; branch k reads column `columns[k]`, the batch
of its own seed. Its output stacks the branches' outputs, `(B, K, classes)`.

Branches of one architecture (same layers, same shapes; the dropout rate
and the seed may differ) are stacked layer by layer, so that one op does the
work of K:

- each kind of layer that stacks has a class in `kreg.tuning.stacked_layers`
  (`Dense` -> `StackedDense`, a `(K, in, out)` kernel and one batched
  matmul; `BatchNormalization` -> `StackedBatchNormalization`, `(K, C)`
  statistics, each branch normalized over its own examples; an `Activation`
  once on the whole stack);
- any other layer runs per branch (`PerBranch`): branch k's own layer on
  branch k's slice.

`DenseBlock`, `Conv2DBlock` and `NormDropout` are taken apart into these
layers in their call order. A model that is not a plain chain of layers
(one input, one output, every layer feeding the next: residual nets, say)
runs whole, per branch.

Nothing is shared between branches: the stacked ops compute every branch
from its own slice, so a branch's gradient is its own, and a branch that
becomes NaN leaves the others untouched.
"""

import keras
from keras import layers
from keras import ops

from kreg import keras_compat
from kreg.layers.linear_block import LinearBlock
from kreg.layers.norm_dropout import NormDropout
from kreg.tuning.stacked_layers import STACKED


class TakeBranches(layers.Layer):
    """Picks slices of axis 1: `(B, n, ...) -> (B, len(indices), ...)`.

    Args:
        indices: the slices to take, in order (repeats allowed).
    """

    def __init__(self, indices, **kwargs):
        super().__init__(**kwargs)
        self.indices = [int(i) for i in indices]

    def call(self, inputs):
        return ops.take(inputs, self.indices, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.indices), *input_shape[2:])


def keep_logits(output, parts, combine):
    """Gives `output` the logits of its `parts`, combined, if they all have them.

    On TensorFlow, Keras' softmax caches its logits on its output
    (`kreg.keras_compat.softmax_logits`), and the cross-entropy of a softmax output is computed
    from them rather than from clipped probabilities. A run alone gets that
    exact loss, so the stacked outputs of a pack must keep the logits too.
    (Elsewhere nothing is cached and nothing is kept.)
    """
    logits = [keras_compat.softmax_logits(part) for part in parts]
    if all(x is not None for x in logits):
        return keras_compat.attach_softmax_logits(output, combine(logits))
    return output


class JoinBranches(layers.Layer):
    """Joins the outputs of groups of branches, `(B, K_g, ...)` each, along
    axis 1 and puts the branches back in order: `(B, K, ...)`.

    Args:
        order: for each branch, its place in the concatenated groups.
    """

    def __init__(self, order, **kwargs):
        super().__init__(**kwargs)
        self.order = [int(i) for i in order]

    def call(self, inputs):
        def join(parts):
            return ops.take(ops.concatenate(parts, axis=1), self.order, axis=1)

        return keep_logits(join(inputs), inputs, join)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], len(self.order), *input_shape[0][2:])


class PerBranch(layers.Layer):
    """Branch k's own layer on branch k's slice of axis 1.

    Args:
        branch_layers: K layers (or models), one per branch.
    """

    def __init__(self, branch_layers, **kwargs):
        super().__init__(**kwargs)
        self.branch_layers = list(branch_layers)

    def call(self, inputs, training=None):
        slices = ops.unstack(inputs, num=len(self.branch_layers), axis=1)
        outputs = [layer(x, training=training) for layer, x in zip(self.branch_layers, slices)]
        return keep_logits(ops.stack(outputs, axis=1), outputs, lambda parts: ops.stack(parts, axis=1))


def chain(model):
    """The layers of `model` in call order if it is a plain chain, else None.

    A plain chain: one input, one output, and every layer (called once) takes
    the previous layer's output. `DenseBlock`, `Conv2DBlock` and
    `NormDropout` are taken apart into the layers they call, in order.

    Returns:
        A list of `(layer, input_shape)`, or None.
    """
    if not isinstance(model, keras.Model) or len(getattr(model, "inputs", None) or ()) != 1 or len(model.outputs) != 1:
        return None
    tensor, found = model.inputs[0], []
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        try:
            if layer.input is not tensor:
                return None
            tensor = layer.output
        except (AttributeError, ValueError):  # called several times, or not in this graph
            return None
        shape = tuple(layer.input.shape)
        for part in parts(layer):
            found.append((part, shape))
            shape = part.compute_output_shape(shape) if part is not layer else None
    return found if tensor is model.outputs[0] else None


def parts(layer):
    """The layers `layer` calls one after another: a kreg block's `parts()`
    (each taken apart in turn), itself for any other layer."""
    if isinstance(layer, (LinearBlock, NormDropout)):
        return [leaf for part in layer.parts() for leaf in parts(part)]
    return [layer]


def stack_key(layer, input_shape):
    """What branches' layers at one place must share to be stacked, or None.

    The key starts with the name of the `stacked_layers` class that stacks
    them; None means the layer runs per branch (`PerBranch`).
    """
    for stacked in STACKED:
        key = stacked.key(layer, input_shape)
        if key is not None:
            return (stacked.__name__, *key)
    return None


def signature(found, output_shape):
    """What branches must share to be stacked layer by layer (hashable).

    Args:
        found: the branch's `chain` (None if it is not one).
        output_shape: the branch's output shape.
    """
    if found is None:
        return ("whole", output_shape)
    return tuple((type(layer).__name__, shape, stack_key(layer, shape)) for layer, shape in found) + (output_shape,)


def stacked_layer(sources, input_shape, index):
    """One layer for the branches' `sources` (the layers at one place)."""
    key = stack_key(sources[0], input_shape)
    name = f"{type(sources[0]).__name__.lower()}_{index}"
    if key is None:
        return PerBranch(sources, name=f"per_branch_{name}")
    stacked = next(s for s in STACKED if s.__name__ == key[0])
    return stacked.of(sources, input_shape, name=f"stacked_{name}")


class Pack:
    """A pack model and where each branch's variables live in it.

    Attributes:
        model: the `keras.Model` of the pack (input `(B, seeds, *example)`,
            output `(B, K, classes)`).
    """

    def __init__(self, model, branches, pairs):
        self.model = model
        self._branches = branches
        self._pairs = pairs

    def load_branches(self):
        """Copies the branches' current variables into the pack."""
        for stacked, sources in self._pairs:
            stacked.assign(ops.stack([s.value for s in sources]))

    def trained_branches(self):
        """The K branch models, holding the pack's current variables
        (trained weights, batch norm statistics)."""
        for stacked, sources in self._pairs:
            for k, source in enumerate(sources):
                source.assign(stacked[k])
        return list(self._branches)


def pack_model(branches, columns, num_seeds):
    """One model training `branches` side by side (see the module docstring).

    Args:
        branches: K built `keras.Model`s, one input and one output each.
        columns: for each branch, the column of its seed in the input.
        num_seeds: number of columns of the input (the seeds of the pack).

    Returns:
        A `Pack`, its model holding the branches' current variables.
    """
    example_shape = tuple(branches[0].inputs[0].shape[1:])
    inputs = keras.Input((num_seeds, *example_shape), name="inputs")
    chains = [chain(branch) for branch in branches]
    groups = {}
    for k, branch in enumerate(branches):
        groups.setdefault(signature(chains[k], tuple(branch.outputs[0].shape)), []).append(k)
    outputs, order, pairs = [], [], []
    for g, members in enumerate(groups.values()):
        x = TakeBranches([columns[k] for k in members], name=f"group_{g}_inputs")(inputs)
        found = [chains[k] for k in members]
        if found[0] is None:
            x = PerBranch([branches[k] for k in members], name=f"group_{g}_models")(x)
        else:
            for i, place in enumerate(zip(*found)):
                sources = [layer for layer, _ in place]
                layer = stacked_layer(sources, place[0][1], f"{g}_{i}")
                x = layer(x)
                if not isinstance(layer, PerBranch):
                    pairs.extend(layer.pairs(sources))
        outputs.append(x)
        order.extend(members)
    if len(outputs) > 1:
        x = JoinBranches([order.index(k) for k in range(len(order))], name="branches")(outputs)
    pack = Pack(keras.Model(inputs, x, name="pack"), list(branches), pairs)
    pack.load_branches()
    return pack
