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
  statistics, each branch normalized over its own examples; `Conv1D` /
  `Conv2D` -> `StackedConv`, one `(K, ...)` kernel and K backend
  convolutions, faster on CPU than any single-op form; `LayerNormalization`
  and `GroupNormalization` on the last axis with `(K, C)` gamma and beta;
  an `Activation`, pooling, `Flatten`, `Reshape` and `ZeroPadding` once,
  the branches folded into the batch) or, for kreg's dropouts and `DropConnectDense`,
  in `kreg.tuning.stacked_noise` (one draw of every branch's masks, each
  branch's exactly the masks its run draws alone);
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
import numpy as np
from keras import layers
from keras import ops

from kreg import keras_compat
from kreg.layers.linear_block import LinearBlock
from kreg.layers.norm_dropout import NormDropout
from kreg.tuning import stacked_layers
from kreg.tuning import stacked_noise

# The stacked layer classes, tried in order (`stack_key`).
STACKED = stacked_layers.STACKED + stacked_noise.STACKED


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


def layout(branches, columns, num_seeds):
    """What packs must share to be one compiled model (hashable), or None.

    Two packs of one layout differ only in the values of their variables
    (weights, seed states, per-branch dropout rates), so one pack model can
    hold either in turn (`Pack.load`) and its compiled train step serves both.
    A layer that runs per branch must have the same configuration in both,
    for its configuration is part of the traced step (its seed aside: that
    is the state of its seed generator, a variable). None: a branch is no
    plain chain, and its pack is not reused.
    """
    found = []
    for branch in branches:
        links = chain(branch)
        if links is None:
            return None
        own = tuple(stacked_layers.described(layer, ("name", "seed")) for layer, shape in links if stack_key(layer, shape) is None)
        found.append((signature(links, tuple(branch.outputs[0].shape)), own))
    return (tuple(found), tuple(columns), num_seeds)


class Pack:
    """A pack model and where each branch's variables live in it.

    Args:
        model: the `keras.Model` of the pack.
        places: for each layer of the pack that holds branch variables,
            `(layer, members, place)`: the branches it computes (their
            indices) and the index of its layer in their `chain`, or None
            for whole branch models.
        layout: the `layout` of the branches the pack was made for.

    Attributes:
        model: the `keras.Model` of the pack (input `(B, seeds, *example)`,
            output `(B, K, classes)`).
        layout: the pack's `layout`: `load` accepts branches of this layout.
    """

    def __init__(self, model, places, layout):
        self.model = model
        self.layout = layout
        self._places = places
        self._branches, self._pairs, self._copies = [], [], []

    def load(self, branches):
        """Makes the pack compute `branches`, from their current variables.

        Args:
            branches: the branches the pack was made of, or other branches
                of its `layout` (the pack then trains those from now on).
        """
        chains = [chain(branch) for branch in branches]
        self._branches, self._pairs, self._copies = list(branches), [], []
        for layer, members, place in self._places:
            sources = [branches[k] if place is None else chains[k][place][0] for k in members]
            if isinstance(layer, PerBranch):
                for own, source in zip(layer.branch_layers, sources):
                    self._copies.extend((a, b) for a, b in zip(own.variables, source.variables) if a is not b)
            else:
                self._pairs.extend(layer.pairs(sources))
        for stacked, values in self._pairs:  # stacked in numpy: no backend op to compile per shape
            stacked.assign(np.stack([ops.convert_to_numpy(v) for v in values]).astype(stacked.dtype))
        for own, source in self._copies:
            own.assign(source)

    def trained_branches(self):
        """The K branch models, holding the pack's current variables
        (trained weights, batch norm statistics, seed states)."""
        for stacked, values in self._pairs:
            for k, value in enumerate(values):
                if isinstance(value, keras.Variable):
                    value.assign(stacked[k])
        for own, source in self._copies:
            source.assign(own)
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
    outputs, order, places = [], [], []
    for g, members in enumerate(groups.values()):
        x = TakeBranches([columns[k] for k in members], name=f"group_{g}_inputs")(inputs)
        found = [chains[k] for k in members]
        if found[0] is None:
            whole = PerBranch([branches[k] for k in members], name=f"group_{g}_models")
            x = whole(x)
            places.append((whole, members, None))
        else:
            for i, place in enumerate(zip(*found)):
                layer = stacked_layer([layer for layer, _ in place], place[0][1], f"{g}_{i}")
                x = layer(x)
                places.append((layer, members, i))
        outputs.append(x)
        order.extend(members)
    if len(outputs) > 1:
        x = JoinBranches([order.index(k) for k in range(len(order))], name="branches")(outputs)
    pack = Pack(keras.Model(inputs, x, name="pack"), places, layout(branches, columns, num_seeds))
    pack.load(branches)
    return pack
