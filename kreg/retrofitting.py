"""retrofit: rewrite a plain Keras model into linear layers + ordered norm/act/drop blocks.

`retrofit(model)` takes a Sequential or Functional model whose layers form
one chain (one input, one output, no branches) and returns a new model in
which every hidden Dense / Conv1D / Conv2D "unit" is the linear layer
followed by one kreg `NormDropout` block, with the normalization, order and
dropout rate you ask for. The output layer stays as it is, the original
model is never changed.

A unit is a linear layer and the activation, dropout and normalization
layers that directly follow it, at most one of each kind:

    Dense(64, activation="relu") -> Dropout(0.3)           # one unit
    Conv2D(8, 3) -> BatchNormalization() -> ReLU()          # one unit

Everything is read through public Keras API: `model.layers`, `get_layer`,
each layer's `get_config()` / `from_config()` and the Functional config
(`model.get_config()`, its "layers" with their "inbound_nodes").

Example:

>>> model = keras.Sequential([
...     keras.Input((4,)),
...     keras.layers.Dense(8, activation="relu"),
...     keras.layers.Dense(1),
... ])
>>> new = retrofit(model, norm="batch", order="norm-act-drop", rate=0.1, seed=0)
>>> [type(layer).__name__ for layer in new.layers]
['Dense', 'NormDropout', 'Dense']
"""

import inspect

import keras
from keras import layers

from kreg.checks import check_bool
from kreg.checks import check_choice
from kreg.checks import check_rate
from kreg.checks import check_seed
from kreg.checks import fail
from kreg.checks import shown
from kreg.layers.alpha_dropout import AlphaDropout
from kreg.layers.gaussian_dropout import GaussianDropout
from kreg.layers.norm_dropout import NORMS
from kreg.layers.norm_dropout import NormDropout
from kreg.layers.norm_dropout import parse_order
from kreg.layers.spatial_dropout import SpatialDropout
from kreg.layers.standard_dropout import StandardDropout
from kreg.layers.uniform_dropout import UniformDropout

# The linear layers that start a unit (exact types: a subclass may do more).
LINEAR_LAYERS = (layers.Dense, layers.Conv1D, layers.Conv2D)

# dropout layer -> NormDropout's `dropout` kind (kept by retrofit; the block
# rebuilds it as kreg's keyed layer of that kind)
DROPOUT_KINDS = {
    layers.Dropout: "standard",
    layers.SpatialDropout1D: "spatial",
    layers.SpatialDropout2D: "spatial",
    layers.GaussianDropout: "gaussian",
    layers.AlphaDropout: "alpha",
    StandardDropout: "standard",
    SpatialDropout: "spatial",
    GaussianDropout: "gaussian",
    AlphaDropout: "alpha",
    UniformDropout: "uniform",
}

# normalization layer -> its NormDropout `norm` name (the unit's norm is replaced by `norm`)
NORM_KINDS = {
    layers.BatchNormalization: "batch",
    layers.LayerNormalization: "layer",
    layers.GroupNormalization: "group",
}

ACTIVATION_LAYERS = (
    layers.Activation,
    layers.ReLU,
    layers.LeakyReLU,
    layers.ELU,
    layers.Softmax,
    layers.PReLU,
)

# Layers that do not change the regularization question: carried over unchanged
# (with their weights when keep_weights=True).
CARRIED_LAYERS = (
    layers.Flatten,
    layers.Reshape,
    layers.Permute,
    layers.RepeatVector,
    layers.Identity,
    layers.MaxPooling1D,
    layers.MaxPooling2D,
    layers.AveragePooling1D,
    layers.AveragePooling2D,
    layers.GlobalMaxPooling1D,
    layers.GlobalMaxPooling2D,
    layers.GlobalAveragePooling1D,
    layers.GlobalAveragePooling2D,
    layers.ZeroPadding1D,
    layers.ZeroPadding2D,
    layers.Cropping1D,
    layers.Cropping2D,
    layers.UpSampling1D,
    layers.UpSampling2D,
    layers.Rescaling,
    layers.Normalization,
    layers.Resizing,
    layers.CenterCrop,
    layers.Embedding,
)

# Preprocessing layers whose state is data statistics, not training: always copied.
STATE_LAYERS = (layers.Normalization,)

_UNIT_PARTS = tuple(DROPOUT_KINDS) + tuple(NORM_KINDS) + ACTIVATION_LAYERS + (NormDropout,)
_KNOWN = LINEAR_LAYERS + _UNIT_PARTS + CARRIED_LAYERS


def retrofit(
    model,
    norm="batch",
    order="norm-act-drop",
    rate=None,
    keep_weights=False,
    seed=None,
):
    """Returns a new model whose hidden units are linear layer + `NormDropout`.

    Every hidden unit of `model` (a `Dense`, `Conv1D` or `Conv2D` layer with
    the activation, dropout and normalization layers directly after it)
    becomes:

    - the linear layer, same config, but without activation, and without
      bias when batch norm directly follows it (`norm="batch"` and `order`
      starting with "norm": BN's beta makes the bias redundant; a layer
      that had no bias keeps none);
    - one `kreg.layers.NormDropout` named `"<linear name>_block"` with
      `order`, `norm`, the unit's activation and the unit's dropout.

    The rules:

    - The unit's activation is the linear layer's own `activation=` or the
      first `Activation` / `ReLU` / `LeakyReLU` / `ELU` / `Softmax` layer
      after it (ReLU-style layers only with parameters that a Keras
      activation name expresses, e.g. `ReLU(max_value=6)` -> "relu6").
    - A unit takes at most one activation, one dropout and one normalization
      (a kreg `NormDropout` after the linear layer counts as its parts, so a
      retrofitted model can be retrofitted again). A second layer of a kind
      the unit already has ends the unit: it and the layers after it are
      carried over as they are.
    - Dropout kind: the unit's own kind is kept ("standard" for Keras'
      `Dropout` or kreg's `StandardDropout`, "spatial" for
      `SpatialDropout1D/2D` or kreg's `SpatialDropout`, "gaussian" and
      "alpha" for Keras' or kreg's `GaussianDropout` and `AlphaDropout`,
      "uniform" for kreg's `UniformDropout`), rebuilt as kreg's layer of
      that kind (all draw from kreg's keyed generator, so that a study packs
      the model's runs fully); a unit without dropout that gets one from
      `rate` gets "standard".
    - Dropout rate: `rate=None` keeps each unit's rate (a unit without
      dropout gets none); a number sets every unit's rate, 0 removes every
      unit's dropout.
    - Normalization: the unit's own normalization layer (Batch / Layer /
      GroupNormalization) is replaced by `norm` with `NormDropout`'s
      defaults (momentum 0.99, epsilon 1e-3, groups: the largest divisor of
      the channels <= 32); `norm=None` removes it.
    - The output layer (the last Dense / Conv1D / Conv2D) and every layer
      after it stay exactly as they are.
    - Layers that do not change the regularization question are carried
      over unchanged: pooling (max, average and global, 1D and 2D),
      `Flatten`, `Reshape`, `Permute`, `RepeatVector`, `Identity`,
      `ZeroPadding1D/2D`, `Cropping1D/2D`, `UpSampling1D/2D`, `Rescaling`,
      `Normalization`, `Resizing`, `CenterCrop`, `Embedding`. So are the
      dropout, normalization and activation layers that do not directly
      follow a linear layer (e.g. an input dropout, or a dropout after a
      pooling layer): they are not part of a unit, and `rate` leaves them
      alone.
    - A nested `Sequential` model is inlined (its layers join the chain);
      other nested models are refused.
    - Weights: with `keep_weights=True` every surviving layer keeps its
      weights (linear layers: the kernel, and the bias when it is kept;
      carried-over layers; the output layer). The normalization of every
      block starts fresh, even where it replaces a batch norm (it sits at
      a new place in the unit). With `keep_weights=False` every layer starts
      from its initializers, except the state of `Normalization`
      (preprocessing) layers, which is data statistics and always copied.
    - `seed` seeds the blocks' dropout: the unit number i (0, 1, ... from the
      input) gets `seed + i`; None leaves them unseeded. It does not seed the
      initializers: call `keras.utils.set_random_seed` for fresh weights that
      repeat.
    - The result is a Sequential model for a Sequential `model`, a
      Functional one otherwise, with the same name and the same layer names
      (a name taken twice, e.g. by an inlined model, gets a suffix); it is not
      compiled.

    Args:
        model: a built `keras.Sequential` or Functional `keras.Model` whose
            layers form one chain: one input, one output, each layer called
            once.
        norm: "batch", "layer", "group" or None, the normalization of every
            block (None: no normalization).
        order: "-"-joined subset of "norm", "act", "drop" (or a list of
            them), the order inside every block, e.g. "norm-act-drop" or
            "act-drop-norm". It must contain "norm" unless `norm=None`,
            "drop" when a unit has a dropout, and "act" when a unit has an
            activation (retrofit never drops a part silently).
        rate: None (keep each unit's dropout rate) or a number in [0, 1)
            (every unit's rate; 0: no dropout).
        keep_weights: bool, copy the weights of the surviving layers.
        seed: None or int >= 0, the seed of the first block's dropout (the
            next block gets `seed + 1`, ...).

    Returns:
        A new, uncompiled `keras.Model` (Sequential for a Sequential input).

    Raises:
        ValueError: for a bad argument ("NAME must be ..., got VALUE"), or a
            model retrofit cannot rewrite, naming the layer and why: a
            subclassed or unbuilt model, several inputs or outputs, a shared
            layer (called more than once), a merge (e.g. `Add`) or a branch,
            a layer called with extra arguments (e.g. `training=True`), a
            nested model that is not a Sequential, a layer retrofit does not
            know (custom layers included), a channels-first convolution, an
            activation layer no activation name expresses, or a dropout
            `NormDropout` cannot rebuild (a `noise_shape`).

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((8,)),
    ...     keras.layers.Dense(16, activation="relu"),
    ...     keras.layers.Dropout(0.3),
    ...     keras.layers.Dense(3, activation="softmax"),
    ... ])
    >>> new = retrofit(model, norm="batch", order="norm-act-drop", seed=0)
    >>> [type(layer).__name__ for layer in new.layers]
    ['Dense', 'NormDropout', 'Dense']
    >>> new.layers[1].rate, new.layers[0].use_bias
    (0.3, False)
    """
    tokens, rate, keep_weights = _check_arguments(model, norm, order, rate, keep_weights, seed)
    sequential, config = _model_kind(model)
    input_config, chain = _chain(model, sequential, config)
    steps = _plan(chain, norm, tokens, rate)
    return _build(model, sequential, input_config, steps, norm, tokens, keep_weights, seed)


# ----------------------------------------------------------------- arguments


def _check_arguments(model, norm, order, rate, keep_weights, seed):
    """Checks every argument; returns `(tokens, rate, keep_weights)` canonical."""
    if not isinstance(model, keras.Model):
        raise fail("model", "a keras.Model (Sequential or Functional)", model)
    check_choice("norm", norm, NORMS)
    tokens = parse_order(order)
    if rate is not None:
        try:
            rate = check_rate("rate", rate)
        except ValueError:
            raise fail("rate", "None or a number in [0, 1)", rate) from None
    keep_weights = check_bool("keep_weights", keep_weights)
    check_seed("seed", seed)
    if norm is not None and "norm" not in tokens:
        raise fail(
            "order",
            f"an order with 'norm' when norm={norm!r} (pass norm=None for no normalization)",
            order,
        )
    if rate and "drop" not in tokens:
        raise fail(
            "order", f"an order with 'drop' when rate={rate!r} (pass rate=0 for no dropout)", order
        )
    return tokens, rate, keep_weights


def _describe(layer):
    """`'name' (Class)` for messages."""
    return f"{layer.name!r} ({type(layer).__name__})"


def _config_of(layer):
    """`layer.get_config()`, or a ValueError naming the layer."""
    try:
        return layer.get_config()
    except Exception as error:  # a custom layer's get_config may raise anything
        raise ValueError(
            f"retrofit rebuilds layers from their config, and layer {_describe(layer)} "
            f"has none it can read: {type(error).__name__}: {error}"
        ) from error


def _model_config(model):
    """`model.get_config()`; a failure is blamed on the first layer without config."""
    try:
        return model.get_config()
    except Exception:
        for layer in model.layers:
            _config_of(layer)
        raise


# ------------------------------------------------------------ model -> chain


def _model_kind(model):
    """`(True, config)` for a Sequential, `(False, config)` for a Functional model.

    Any other model (a subclass of `keras.Model`, of `Sequential` or of a
    Functional model) is refused: its `call` may do more than its config says.
    """
    keras_made = type(model).__module__.split(".")[0] == "keras"
    if type(model) is keras.Sequential:
        if not model.built:
            raise ValueError(
                f"model {model.name!r} is not built: retrofit needs its input shape "
                "(start it with keras.Input(...) or call model.build(input_shape))"
            )
        return True, _model_config(model)
    if keras_made and not isinstance(model, keras.Sequential):
        config = _model_config(model)
        if isinstance(config, dict) and "input_layers" in config and "output_layers" in config:
            return False, config
    raise ValueError(
        f"model {model.name!r} is a subclassed model ({type(model).__name__}): retrofit "
        "rewrites Sequential and Functional models only, whose layers and connections "
        "it can read from their config"
    )


def _chain(model, sequential, config):
    """The input layer's config and the model's layers in call order.

    Refuses several inputs/outputs, shared layers, merges, branches, call
    arguments and nested models other than Sequential ones (which are
    inlined).
    """
    if sequential:
        first = config["layers"][0]
        if first["class_name"] != "InputLayer":  # pragma: no cover - built Sequential has one
            raise ValueError(f"model {model.name!r} has no input layer in its config")
        input_config, layer_list = first["config"], list(model.layers)
    else:
        input_config, layer_list = _functional_chain(model, config)
    chain = _inline(layer_list)
    seen = {}
    for layer in chain:
        seen[id(layer)] = seen.get(id(layer), 0) + 1
        if seen[id(layer)] == 2:
            raise ValueError(
                f"layer {_describe(layer)} is used more than once: retrofit rewrites plain "
                "chains, where each layer is called once (shared layers are not supported)"
            )
    return input_config, chain


def _functional_chain(model, config):
    """Walks a Functional config from its input to its output."""
    for what, tensors in (("inputs", model.inputs), ("outputs", model.outputs)):
        if len(tensors) != 1:
            raise ValueError(
                f"model {model.name!r} has {len(tensors)} {what}: retrofit rewrites plain "
                "chains with one input and one output"
            )
    entries = {entry["name"]: entry for entry in config["layers"]}
    children = {name: [] for name in entries}
    input_name = None
    for name, entry in entries.items():
        layer = model.get_layer(name)
        nodes = entry["inbound_nodes"]
        if entry["class_name"] == "InputLayer" and not nodes:
            input_name = name
            continue
        if len(nodes) != 1:
            raise ValueError(
                f"layer {_describe(layer)} is called {len(nodes)} times: retrofit rewrites "
                "plain chains, where each layer is called once (shared layers are not "
                "supported)"
            )
        parents, others = _split_node(nodes[0], _call_defaults(layer))
        if len(parents) != 1:
            raise ValueError(
                f"retrofit rewrites plain chains; layer {_describe(layer)} joins "
                f"{len(parents)} branches"
            )
        if others:
            raise ValueError(
                f"layer {_describe(layer)} is called with {', '.join(others)}: retrofit "
                "rebuilds plain calls layer(x) only"
            )
        parent, node_index, tensor_index = parents[0]
        if tensor_index != 0:
            raise ValueError(
                f"layer {_describe(layer)} reads output {tensor_index} of layer "
                f"{parent!r}: retrofit rewrites chains of single-output layers"
            )
        children[parent].append(name)
    for name, kids in children.items():
        if len(kids) > 1:
            raise ValueError(
                f"retrofit rewrites plain chains; layer {_describe(model.get_layer(name))} "
                f"feeds {len(kids)} layers ({', '.join(map(repr, kids))}), a branch"
            )
    names, current = [], input_name
    while children[current]:
        current = children[current][0]
        names.append(current)
    return entries[input_name]["config"], [model.get_layer(name) for name in names]


def _call_defaults(layer):
    """The default values of `layer.call`'s keyword arguments.

    A Functional config records some defaults as if they were given (e.g.
    `training=False` for a dropout layer): those are not call arguments.
    """
    try:
        parameters = inspect.signature(layer.call).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return {}
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def _split_node(node, defaults):
    """The `(layer, node, tensor)` histories of a node's tensors, and its other arguments.

    Keyword arguments that are None or equal to the call's default are ignored.
    """
    parents, others = [], []

    def visit(value, label):
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            parents.append(tuple(value["config"]["keras_history"]))
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item, label)
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(item, label)
        elif value is not None:
            others.append(f"{label}={shown(value)}")

    for position, arg in enumerate(node.get("args", [])):
        visit(arg, f"argument {position}")
    for key, value in node.get("kwargs", {}).items():
        if key in defaults and _same(value, defaults[key]):
            continue
        visit(value, key)
    return parents, others


def _same(value, default):
    """True if `value` is `default` (compared safely: bools are not ints)."""
    return type(value) is type(default) and value == default


def _inline(layer_list):
    """The layers with every nested Sequential replaced by its own layers."""
    chain = []
    for layer in layer_list:
        if type(layer) is keras.Sequential:
            chain.extend(_inline(layer.layers))
        elif isinstance(layer, keras.Model):
            raise ValueError(
                f"layer {_describe(layer)} is a nested model: retrofit inlines nested "
                "Sequential models only (rebuild the model as one chain)"
            )
        else:
            chain.append(layer)
    return chain


# --------------------------------------------------------------- chain -> plan


class _Unit:
    """A hidden unit: its linear layer and the parts found after it."""

    def __init__(self, linear):
        self.linear = linear
        self.activation = _linear_activation(linear)
        self.dropout = None  # NormDropout kind
        self.rate = 0.0
        self.norm = None  # the source's norm kind (replaced by `norm`)
        self.members = [linear]

    def has(self, kind):
        return {"act": self.activation, "drop": self.dropout, "norm": self.norm}[kind] is not None

    def take(self, layer):
        """Adds `layer` as a part; False if the unit already has a part of its kind."""
        if type(layer) in ACTIVATION_LAYERS and self.has("act"):
            return False  # a second activation, whatever it is, ends the unit
        parts = _parts(layer, self)
        if any(self.has(kind) for kind in parts):
            return False
        for kind, value in parts.items():
            if kind == "act":
                self.activation = value
            elif kind == "drop":
                self.dropout, self.rate = value
            else:
                self.norm = value
        self.members.append(layer)
        return True


def _linear_activation(linear):
    """The linear layer's own activation (serialized), None for linear."""
    config = _config_of(linear)
    if config.get("data_format", "channels_last") != "channels_last":
        raise ValueError(
            f"layer {_describe(linear)} has data_format={config['data_format']!r}: "
            "retrofit's blocks normalize and drop on the last axis (channels_last only)"
        )
    activation = config.get("activation")
    return None if activation in (None, "linear") else activation


def _parts(layer, unit):
    """The unit parts `layer` provides: {"act": name, "drop": (kind, rate), "norm": kind}."""
    config = _config_of(layer)
    kind = type(layer)
    if kind is NormDropout:
        tokens = parse_order(config["order"])
        parts = {}
        if "act" in tokens and config["activation"] not in (None, "linear"):
            parts["act"] = config["activation"]
        if "drop" in tokens and config["dropout"] is not None and config["rate"] > 0:
            parts["drop"] = (config["dropout"], config["rate"])
        if "norm" in tokens and config["norm"] is not None:
            parts["norm"] = config["norm"]
        return parts
    if kind in NORM_KINDS:
        return {"norm": NORM_KINDS[kind]}
    if kind in DROPOUT_KINDS:
        return {"drop": (DROPOUT_KINDS[kind], _dropout_rate(layer, config, unit))}
    activation = _activation_name(layer, config, unit)
    return {} if activation is None else {"act": activation}


def _dropout_rate(layer, config, unit):
    """The dropout layer's rate, refusing what NormDropout cannot rebuild."""
    problems = []
    if config.get("noise_shape") is not None:
        problems.append(f"noise_shape={config['noise_shape']!r}")
    if config.get("data_format", "channels_last") != "channels_last":
        problems.append(f"data_format={config['data_format']!r}")
    if config.get("mean", 0.0) != 0.0 or config.get("variance", 1.0) != 1.0:
        problems.append(f"mean={config['mean']!r}, variance={config['variance']!r}")
    if problems:
        raise ValueError(
            f"layer {_describe(layer)} of unit {unit.linear.name!r} has "
            f"{', '.join(problems)}: NormDropout rebuilds dropouts from their kind and "
            "rate only"
        )
    return float(config["rate"])


def _activation_name(layer, config, unit):
    """The activation name an activation layer stands for (None for linear)."""
    kind = type(layer)
    name = None
    if kind is layers.Activation:
        activation = config["activation"]
        return None if activation in (None, "linear") else activation
    if kind is layers.ReLU:
        slope, threshold, top = config["negative_slope"], config["threshold"], config["max_value"]
        if slope == 0 and threshold == 0 and top is None:
            name = "relu"
        elif slope == 0 and threshold == 0 and top == 6:
            name = "relu6"
        elif slope == 0.2 and threshold == 0 and top is None:
            name = "leaky_relu"
    elif kind is layers.LeakyReLU and config["negative_slope"] == 0.2:
        name = "leaky_relu"
    elif kind is layers.ELU and config["alpha"] == 1.0:
        name = "elu"
    elif kind is layers.Softmax and config["axis"] == -1:
        name = "softmax"
    if name is None:
        raise ValueError(
            f"layer {_describe(layer)} is the activation of unit {unit.linear.name!r}, and "
            "no Keras activation name expresses it with these settings (or it has weights): "
            "NormDropout takes an activation name; use Activation(...) or a ReLU/LeakyReLU/"
            "ELU/Softmax whose settings match a Keras activation's defaults"
        )
    return name


def _plan(chain, norm, tokens, rate):
    """The steps of the new model: `("unit", _Unit)` or `("carry", layer)`."""
    for layer in chain:
        if type(layer) not in _KNOWN:
            raise ValueError(
                f"retrofit does not know layer {_describe(layer)}: it rewrites plain "
                "chains of Dense/Conv1D/Conv2D units (with their activation, dropout "
                "and normalization layers) and carries over only layers that do not "
                "change the regularization question (pooling, Flatten, Reshape, "
                "padding, cropping, Rescaling, Normalization, ...; see retrofit's "
                "docstring)"
            )
    linear_at = [i for i, layer in enumerate(chain) if type(layer) in LINEAR_LAYERS]
    if not linear_at:
        raise ValueError(
            "retrofit found no Dense, Conv1D or Conv2D layer in the model: it has no unit "
            "to rewrite"
        )
    output_at = linear_at[-1]
    steps, i = [], 0
    while i < output_at:
        layer = chain[i]
        if type(layer) not in LINEAR_LAYERS:
            steps.append(("carry", layer))
            i += 1
            continue
        unit = _Unit(layer)
        i += 1
        while i < output_at and type(chain[i]) in _UNIT_PARTS and unit.take(chain[i]):
            i += 1
        _resolve_rate(unit, rate, tokens)
        steps.append(("unit", unit))
    steps.extend(("carry", layer) for layer in chain[output_at:])
    return steps


def _resolve_rate(unit, rate, tokens):
    """Applies `rate` to the unit and checks that `order` has room for its parts."""
    order = "-".join(tokens)
    if rate is not None:
        unit.dropout, unit.rate = (unit.dropout or "standard", rate) if rate else (None, 0.0)
    elif not unit.rate:
        unit.dropout = None
    if unit.dropout is not None and "drop" not in tokens:
        raise ValueError(
            f"order {order!r} has no 'drop', but unit {unit.linear.name!r} keeps its "
            f"dropout (rate {unit.rate:g}, as rate=None keeps each unit's rate): add 'drop' "
            "to order or pass rate=0"
        )
    if unit.activation is not None and "act" not in tokens:
        raise ValueError(
            f"order {order!r} has no 'act', but unit {unit.linear.name!r} has activation "
            f"{unit.activation!r}: add 'act' to order"
        )


# --------------------------------------------------------------- plan -> model


def _fresh(layer, name):
    """A new layer of `layer`'s class and config, named `name`."""
    config = dict(_config_of(layer))
    config["name"] = name
    return type(layer).from_config(config)


def _unique(name, used):
    """`name`, or `name_1`, `name_2`, ... if taken; marks it used."""
    candidate, count = name, 0
    while candidate in used:
        count += 1
        candidate = f"{name}_{count}"
    used.add(candidate)
    return candidate


def _build(model, sequential, input_config, steps, norm, tokens, keep_weights, seed):
    """Creates the new layers, connects them, copies the weights asked for."""
    used = {input_config["name"]}
    names = {}
    for kind, item in steps:  # surviving layers keep their names first
        layer = item.linear if kind == "unit" else item
        names[id(layer)] = _unique(layer.name, used)
    starts_with_batch_norm = norm == "batch" and tokens[0] == "norm"
    new_layers, copies = [], []  # copies: (source, new, bias kept)
    unit_index = 0
    for kind, item in steps:
        if kind == "carry":
            new = _fresh(item, names[id(item)])
            new_layers.append(new)
            copies.append((item, new, None))
            continue
        config = dict(_config_of(item.linear))
        config["name"] = names[id(item.linear)]
        config["activation"] = "linear"
        config["use_bias"] = bool(config.get("use_bias", True)) and not starts_with_batch_norm
        linear = type(item.linear).from_config(config)
        block = NormDropout(
            order="-".join(tokens),
            norm=norm,
            activation=item.activation,
            dropout=item.dropout,
            rate=item.rate,
            seed=None if seed is None else seed + unit_index,
            dtype=item.linear.dtype_policy,
            name=_unique(f"{config['name']}_block", used),
        )
        new_layers += [linear, block]
        copies.append((item.linear, linear, config["use_bias"]))
        unit_index += 1

    inputs = keras.Input(
        batch_shape=tuple(input_config["batch_shape"]),
        dtype=input_config.get("dtype"),
        sparse=input_config.get("sparse", False),
        name=input_config["name"],
    )
    if sequential:
        new_model = keras.Sequential([inputs] + new_layers, name=model.name)
    else:
        outputs = inputs
        for layer in new_layers:
            outputs = layer(outputs)
        new_model = keras.Model(inputs, outputs, name=model.name)

    for source, new, bias in copies:
        if bias is not None:  # a linear layer of a unit
            if keep_weights:
                new.kernel.assign(keras.ops.convert_to_numpy(source.kernel))
                if bias:
                    new.bias.assign(keras.ops.convert_to_numpy(source.bias))
        elif keep_weights or type(source) in STATE_LAYERS:
            new.set_weights(source.get_weights())
    return new_model
