"""fold_batchnorm: a new model with each BatchNormalization merged into the
Dense / Conv / DepthwiseConv layer directly before it."""

import dataclasses
from collections import Counter
from collections import defaultdict

import keras

from kreg.checks import check_bool
from kreg.inference.common import check_model
from kreg.keras_compat import graph_nodes
from kreg.keras_compat import is_functional
from kreg.keras_compat import producing_layer
from kreg.layers.linear_block import LinearBlock
from kreg.ops.batchnorm_folding import fold_batchnorm_weights

_LINEAR = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)


@dataclasses.dataclass(frozen=True)
class FoldDecision:
    """What `fold_batchnorm` did with one BatchNormalization.

    Attributes:
        batchnorm: the BN's name; inside a block or a nested model
            "outer/inner", e.g. "dense_block/block/norm".
        linear: the name of the layer whose output the BN reads (None when it
            reads a model input).
        folded: True if the BN was folded into `linear`.
        reason: why (not), in words.
    """

    batchnorm: str
    linear: str | None
    folded: bool
    reason: str


def fold_batchnorm(model, return_report=False):
    """Returns a new model with every foldable BatchNormalization folded away.

    A BN in inference mode is an affine map per channel, so after a linear
    layer it can be merged into that layer's kernel and bias
    (`kreg.ops.batchnorm_folding`): the new model computes the same function
    as `model(x, training=False)` with fewer layers, parameters and
    operations. Use it for inference only: the folded model has no batch
    statistics left to train.

    A BN is folded into the layer before it only where that is exact:
    - that layer is a `Dense`, `Conv1D/2D/3D` (grouped too) or
      `DepthwiseConv1D/2D` (exactly these classes, channels_last) with a
      linear activation, called once, whose output nothing but the BN reads
      (and that is not a model output);
    - the BN normalizes the last (channel) axis and is called once.
    Inside a kreg block (`DenseBlock`, `Conv2DBlock`, any `LinearBlock`)
    whose `parts()` have a BatchNormalization right after the linear layer,
    the folded block has "norm" removed from its order and a bias (a block
    left with no part becomes its plain Dense / Conv2D).
    Nested Sequential / Functional models are folded inside. Every other BN
    stays as it is.

    The original model is not modified. The new model holds copies of all
    other weights and is compiled like the original if that was compiled.

    Args:
        model: a built Sequential or Functional `keras.Model`. Subclassed
            models are refused (they have no layer graph to rewrite).
        return_report: bool; if True, also return the list of decisions.

    Returns:
        The folded `keras.Model`; with `return_report=True` the pair
        `(folded_model, report)`, where `report` holds one `FoldDecision`
        (`batchnorm`, `linear`, `folded`, `reason`) per BatchNormalization,
        graph-level BNs first, then those inside blocks and nested models.

    Example:

    >>> inputs = keras.Input((8,))
    >>> x = keras.layers.Dense(4, use_bias=False)(inputs)
    >>> outputs = keras.layers.BatchNormalization()(x)
    >>> folded, report = fold_batchnorm(keras.Model(inputs, outputs), return_report=True)
    >>> [layer.name for layer in folded.layers][1:], report[0].folded
    (['dense'], True)
    """
    check_model(model)
    return_report = check_bool("return_report", return_report)
    folded, report = _fold_model(model, prefix="")
    return (folded, report) if return_report else folded


def _fold_model(model, prefix):
    if not isinstance(model, keras.Sequential) and not is_functional(model):
        raise TypeError(
            "fold_batchnorm needs a Sequential or Functional model, got the "
            f"subclassed model {model.name!r} ({type(model).__name__}): it has "
            "no layer graph to rewrite"
        )
    if not model.built:
        raise ValueError(
            f"model {model.name!r} is not built: give it an Input or call it on data first"
        )
    if isinstance(model, keras.Sequential):
        links = _sequential_links(model)
    else:
        links = _functional_links(model)

    report = []
    targets = {}  # id(linear layer) -> the BN folded into it
    for bn, linear, refusal in links:
        if refusal is None:
            targets[id(linear)] = bn
        name = None if linear is None else prefix + linear.name
        reason = refusal or f"folded into {name!r}"
        report.append(FoldDecision(prefix + bn.name, name, refusal is None, reason))
    folded_bns = {id(bn) for bn in targets.values()}

    pending = []  # (new layer, the weights it gets once built)
    pending_parts = []  # (new block or linear layer, the weights of each of its parts)
    skipped = set()  # ids of the clones of folded BNs: never called

    def clone(layer):
        if isinstance(layer, keras.Model):
            new, inner = _fold_model(layer, prefix=f"{prefix}{layer.name}/")
            report.extend(inner)
            return new
        if isinstance(layer, LinearBlock):
            folded = _fold_block(layer, prefix, report)
            if folded is not None:
                pending_parts.append(folded)
                return folded[0]
        config = layer.get_config()
        if id(layer) in targets:
            config["use_bias"] = True
        new = layer.__class__.from_config(config)
        if id(layer) in folded_bns:
            skipped.add(id(new))
        elif id(layer) in targets:
            pending.append((new, _folded_weights(layer, targets[id(layer)])))
        else:
            pending.append((new, layer.get_weights()))
        return new

    if isinstance(model, keras.Sequential):
        kept = [layer for layer in model.layers if id(layer) not in folded_bns]
        new_model = keras.Sequential(
            [keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype)]
            + [clone(layer) for layer in kept],
            name=model.name,
            trainable=model.trainable,
        )
        if model.compiled:
            new_model.compile_from_config(model.get_compile_config())
    else:

        def call(layer, *args, **kwargs):
            return args[0] if id(layer) in skipped else layer(*args, **kwargs)

        new_model = keras.models.clone_model(model, clone_function=clone, call_function=call)

    for new, weights in pending:
        new.set_weights(weights)
    for new, weights in pending_parts:
        parts = new.parts() if isinstance(new, LinearBlock) else [new]
        for part, values in zip(parts, weights):
            part.set_weights(values)
    return new_model, report


def _sequential_links(model):
    """(bn, layer before it, refusal reason or None) for each BN of a Sequential."""
    layers = model.layers
    links = []
    for index, layer in enumerate(layers):
        if isinstance(layer, keras.layers.BatchNormalization):
            before = layers[index - 1] if index else None
            refusal = _refusal(layer, before, calls=Counter(), other_readers=())
            links.append((layer, before, refusal))
    return links


def _functional_links(model):
    """(bn, producer of its input, refusal reason or None) for each BN of a Functional."""
    nodes = [node for node in graph_nodes(model) if not node.is_input]
    calls = Counter(id(node.operation) for node in nodes)
    readers = defaultdict(list)  # id(tensor) -> who reads it, in words
    for node in nodes:
        for tensor in node.input_tensors:
            readers[id(tensor)].append(repr(node.operation.name))
    for tensor in model.outputs:
        readers[id(tensor)].append("the model output")

    links = []
    for node in nodes:
        bn = node.operation
        if not isinstance(bn, keras.layers.BatchNormalization):
            continue
        tensor = node.input_tensors[0]
        before = producing_layer(tensor)
        if isinstance(before, keras.layers.InputLayer):
            before = None
        others = [reader for reader in readers[id(tensor)] if reader != repr(bn.name)]
        links.append((bn, before, _refusal(bn, before, calls, others)))
    return links


def _refusal(bn, before, calls, other_readers):
    """Why `bn` cannot be folded into `before` (None: it can)."""
    if calls[id(bn)] > 1:
        return f"{bn.name!r} is called {calls[id(bn)]} times"
    if bn.axis not in (-1, bn.input_spec.ndim - 1):
        return f"{bn.name!r} normalizes axis {bn.axis}, not the last (channel) axis"
    if before is None:
        return f"{bn.name!r} reads a model input, not a linear layer"
    reason = _linear_refusal(before)
    if reason:
        return reason
    if calls[id(before)] > 1:
        return f"{before.name!r} is called {calls[id(before)]} times"
    if other_readers:
        return f"the output of {before.name!r} is also read by {', '.join(other_readers)}"
    return None


def _linear_refusal(layer):
    """Why the layer itself cannot take a BN (None: it can)."""
    if type(layer) not in _LINEAR + _DEPTHWISE:
        return (
            f"{layer.name!r} ({type(layer).__name__}) is not a Dense, Conv1D/2D/3D "
            "or DepthwiseConv1D/2D layer"
        )
    activation = keras.activations.serialize(layer.activation)
    if activation != "linear":
        return f"{layer.name!r} has activation {activation!r} between it and the batch norm"
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return f"{layer.name!r} is channels_first: its channels are not the last axis"
    return None


def _fold_block(block, prefix, report):
    """Folds the batch norm among a `LinearBlock`'s parts, if there is one.

    Appends one `FoldDecision` per batch norm among the block's parts.

    Returns:
        None if nothing is folded (the block is cloned as it is), else
        `(new_layer, weights)`: the new block (or the plain linear layer
        when no part is left) and the weights of each of its parts.
    """
    linear, *rest = block.parts()
    linear_path = f"{prefix}{block.name}/{linear.name}"
    folded = None
    for position, part in enumerate(rest):
        if not isinstance(part, keras.layers.BatchNormalization):
            continue
        bn_path = f"{prefix}{block.name}/{block.block.name}/{part.name}"
        reason = _block_refusal(linear, rest[:position], part)
        if reason is None:
            others = [p for p in rest if p is not part]
            weights = [_folded_weights(linear, part)] + [p.get_weights() for p in others]
            folded = (_folded_block(block, linear), weights)
        report.append(
            FoldDecision(bn_path, linear_path, reason is None, reason or f"folded into {linear_path!r}")
        )
    return folded


def _block_refusal(linear, between, bn):
    """Why a block's batch norm cannot be folded into its linear layer (None: it can).

    Args:
        linear: the block's linear layer.
        between: the block's parts called between `linear` and `bn`.
        bn: the batch norm.
    """
    if between:
        names = ", ".join(f"{p.name!r} ({type(p).__name__})" for p in between)
        return f"the block calls {names} between the linear layer and the batch norm"
    if bn.axis not in (-1, bn.input_spec.ndim - 1):
        return f"the block normalizes axis {bn.axis}, not the last (channel) axis"
    return _linear_refusal(linear)


def _folded_block(block, linear):
    """A new block with "norm" removed from its order (or the plain linear layer)."""
    order = [token for token in block.block.order if token != "norm"]
    if not order:
        linear_config = linear.get_config()
        linear_config.update(name=block.name, use_bias=True)
        return type(linear).from_config(linear_config)
    config = block.get_config()
    config.update(order="-".join(order), norm=None, use_bias=True)
    return type(block).from_config(config)


def _folded_weights(linear, bn):
    """The folded `[kernel, bias]` for `linear` followed by `bn`, as numpy."""
    kernel, bias = fold_batchnorm_weights(
        linear.kernel,
        linear.bias if linear.use_bias else None,
        bn.moving_mean,
        bn.moving_variance,
        bn.epsilon,
        gamma=bn.gamma if bn.scale else None,
        beta=bn.beta if bn.center else None,
        depthwise=isinstance(linear, _DEPTHWISE),
    )
    return [keras.ops.convert_to_numpy(kernel), keras.ops.convert_to_numpy(bias)]
