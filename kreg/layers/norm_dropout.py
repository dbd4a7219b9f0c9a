"""NormDropout: normalization, activation and dropout applied in a chosen order."""

import warnings

import keras
from keras import layers

from kreg.checks import check_choice
from kreg.checks import check_int
from kreg.checks import check_positive
from kreg.checks import check_positive_int
from kreg.checks import check_rate
from kreg.checks import check_seed
from kreg.checks import fail
from kreg.layers.alpha_dropout import AlphaDropout
from kreg.layers.gaussian_dropout import GaussianDropout
from kreg.layers.spatial_dropout import SPATIAL_RANKS
from kreg.layers.spatial_dropout import SpatialDropout
from kreg.layers.standard_dropout import StandardDropout
from kreg.layers.uniform_dropout import UniformDropout

TOKENS = ("norm", "act", "drop")
NORMS = ("batch", "layer", "group", None)
DROPOUTS = ("standard", "alpha", "gaussian", "uniform", "spatial", None)
MAX_DEFAULT_GROUPS = 32  # Wu & He (2018), "Group Normalization", use G = 32.

# kreg's dropout layers all draw from the keyed generator (kreg.ops.keyed_random),
# so a pack of runs (kreg.tuning) draws every branch's noise in one op.
_DROPOUT_LAYERS = {
    "standard": StandardDropout,
    "gaussian": GaussianDropout,
    "alpha": AlphaDropout,
    "uniform": UniformDropout,
    "spatial": SpatialDropout,
}


def parse_order(order):
    """Parses a block order into a tuple of tokens.

    Args:
        order: a "-"-joined string such as `"norm-act-drop"`, or a list/tuple
            of tokens. Tokens are "norm", "act" and "drop", each at most once,
            in any order; a subset is fine.

    Returns:
        The tokens as a tuple, e.g. `("norm", "act", "drop")`.

    Example:

    >>> parse_order("drop-norm")
    ('drop', 'norm')
    """
    if isinstance(order, str):
        tokens = tuple(order.split("-")) if order else ()
    elif isinstance(order, (list, tuple)):
        tokens = tuple(order)
    else:
        raise ValueError(
            f"order must be a '-'-joined string or a list of tokens, got {order!r}"
        )
    allowed = ", ".join(repr(token) for token in TOKENS)
    if not tokens:
        raise ValueError(f"order must contain at least one of {allowed}, got {order!r}")
    for token in tokens:
        if token not in TOKENS:
            raise ValueError(
                f"order must be made of the tokens {allowed}, got {order!r} (unknown token {token!r})"
            )
        if tokens.count(token) > 1:
            raise ValueError(
                f"order must hold each of {allowed} at most once, got {order!r} (repeats token {token!r})"
            )
    return tokens


def default_groups(channels):
    """The number of groups used by `norm="group"` when `groups=None`.

    The largest divisor of `channels` that is at most 32 (Wu & He use 32
    groups; narrower layers get fewer, so every width works).

    Example:

    >>> default_groups(48)
    24
    """
    return max(g for g in range(1, min(channels, MAX_DEFAULT_GROUPS) + 1) if channels % g == 0)


def _check_block_rate(rate, dropout):
    """The rate as a float: None means 0.5, or 0 without a dropout."""
    if rate is None:
        return 0.0 if dropout is None else 0.5
    rate = check_rate("rate", rate)
    if dropout is None and rate != 0:
        raise fail("rate", "0 (or None) when dropout is None, as there is no dropout", rate)
    return rate


def _check_activation(activation):
    """Returns `activation` resolved to a function (None stays None)."""
    if activation is None:
        return None
    try:
        return keras.activations.get(activation)
    except (ValueError, TypeError) as error:
        raise ValueError(
            "activation must be a Keras activation name or callable, or None, "
            f"got {activation!r}"
        ) from error


@keras.saving.register_keras_serializable(package="kreg")
class NormDropout(layers.Layer):
    """Normalization, activation and dropout, applied in the order you choose.

    The three parts are keras/kreg layers, built once the input shape is known:
    `norm` -> `BatchNormalization` / `LayerNormalization` /
    `GroupNormalization`, `activation` -> `Activation`, `dropout` -> `Dropout`
    ("standard"), `GaussianDropout` ("gaussian"), `SpatialDropout1D/2D/3D`
    ("spatial", chosen by input rank, channels last), kreg `AlphaDropout`
    ("alpha") or kreg `UniformDropout` ("uniform"). A token whose part is None
    (e.g. "norm" with `norm=None`) is skipped.

    Args:
        order: "-"-joined string (or list/tuple) of a subset of "norm", "act",
            "drop", each at most once, e.g. "norm-act-drop" or "act-drop-norm".
        norm: "batch", "layer", "group" or None.
        activation: any Keras activation identifier, or None.
        dropout: "standard", "alpha", "gaussian", "uniform", "spatial" or None.
            "alpha" is designed for SELU: another activation warns.
        rate: dropout rate in [0, 1), or None: 0.5 with a dropout, 0 with
            `dropout=None` (which refuses any other rate).
        axis: the channel axis, normalized by the norm layer; it must be an
            axis of the input (checked at build).
        seed: int >= 0 or None, seed of the dropout layer's randomness.
        groups: int or None, the number of groups of `norm="group"`; it must
            divide the channels. None means the largest divisor of the
            channels that is at most 32.
        momentum: moving-statistics momentum of `norm="batch"`.
        epsilon: small float added to the variance by every norm.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Call arguments:
        inputs: a tensor; "spatial" dropout needs rank 3, 4 or 5.
        training: bool or None. Dropout is active only in training; batch norm
            uses batch statistics in training and moving statistics otherwise.

    Attributes (None when absent; set once the layer is built):
        order: the tokens as given, e.g. `("norm", "act", "drop")`.
        norm_layer, activation_layer, dropout_layer: the sublayers; `parts()`
            lists them in call order.

    Returns:
        A tensor of the input's shape.

    Example:

    >>> block = NormDropout("act-drop-norm", norm="layer", rate=0.2, seed=1)
    >>> block(np.ones((2, 4)), training=False).shape
    (2, 4)
    """

    def __init__(
        self,
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
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.order = parse_order(order)
        self.norm = check_choice("norm", norm, NORMS)
        self.activation = _check_activation(activation)
        self.dropout = check_choice("dropout", dropout, DROPOUTS)
        self.rate = _check_block_rate(rate, self.dropout)
        self.axis = check_int("axis", axis)
        self.seed = check_seed("seed", seed)
        self.groups = None if groups is None else check_positive_int("groups", groups)
        self.momentum = check_rate("momentum", momentum)
        self.epsilon = check_positive("epsilon", epsilon)
        self.norm_layer = None
        self.activation_layer = None
        self.dropout_layer = None
        if self.dropout == "alpha" and "drop" in self.order:
            used = activation if "act" in self.order else None
            if used is None or self.activation is not keras.activations.selu:
                warnings.warn(
                    "dropout='alpha' is designed to follow activation='selu', got "
                    f"activation={used!r} in order {'-'.join(self.order)!r}; its "
                    "mean/variance correction assumes SELU outputs",
                    UserWarning,
                    stacklevel=2,
                )

    @property
    def starts_with_batch_norm(self):
        """True when batch norm is the first part: a bias before it is redundant."""
        return self.norm == "batch" and self.order[0] == "norm"

    def build(self, input_shape):
        rank = len(input_shape)
        if not -rank <= self.axis < rank:
            raise fail("axis", f"in [{-rank}, {rank}) for an input of rank {rank}", self.axis)
        if self.norm is not None and "norm" in self.order:
            self.norm_layer = self._make_norm(input_shape)
            self.norm_layer.build(input_shape)
        if self.activation is not None and "act" in self.order:
            self.activation_layer = layers.Activation(
                self.activation, dtype=self.dtype_policy, name="activation"
            )
        if self.dropout is not None and "drop" in self.order:
            self.dropout_layer = self._make_dropout(input_shape)
            self.dropout_layer.build(input_shape)

    def _make_norm(self, input_shape):
        common = {
            "axis": self.axis,
            "epsilon": self.epsilon,
            "dtype": self.dtype_policy,
            "name": "norm",
        }
        if self.norm == "batch":
            return layers.BatchNormalization(momentum=self.momentum, **common)
        if self.norm == "layer":
            return layers.LayerNormalization(**common)
        channels = input_shape[self.axis]
        if channels is None:
            raise ValueError(
                f"norm='group' needs a known channel count on axis {self.axis}, "
                f"got input shape {tuple(input_shape)}"
            )
        groups = default_groups(channels) if self.groups is None else self.groups
        if channels % groups:
            raise ValueError(
                f"groups must divide the {channels} channels (axis {self.axis}), got {groups}"
            )
        return layers.GroupNormalization(groups=groups, **common)

    def _make_dropout(self, input_shape):
        rank = len(input_shape)
        if self.dropout == "spatial" and rank not in SPATIAL_RANKS:
            raise ValueError(
                "dropout='spatial' needs input of rank 3, 4 or 5 (batch, ..., channels), "
                f"got rank {rank} input shape {tuple(input_shape)}"
            )
        if self.dropout == "spatial" and self.axis not in (-1, rank - 1):
            raise ValueError(
                "dropout='spatial' drops whole channels on the last axis, so it needs "
                f"axis=-1, got axis={self.axis}"
            )
        layer_class = _DROPOUT_LAYERS[self.dropout]
        return layer_class(self.rate, seed=self.seed, dtype=self.dtype_policy, name="dropout")

    def parts(self):
        """The built sublayers in call order; tokens whose part is None are skipped.

        Returns:
            A list of layers, e.g. `[BatchNormalization, Activation, StandardDropout]`
            for order "norm-act-drop" (empty if no token has a part).

        Raises:
            ValueError: if the block is not built yet (its parts do not exist).

        Example:

        >>> block = NormDropout("act-norm", norm="layer")
        >>> block.build((None, 4))
        >>> [type(part).__name__ for part in block.parts()]
        ['Activation', 'LayerNormalization']
        """
        if not self.built:
            raise ValueError(
                f"NormDropout {self.name!r} is not built: its parts exist once it is "
                "built (call it on data or call build(input_shape))"
            )
        named = {
            "norm": self.norm_layer,
            "act": self.activation_layer,
            "drop": self.dropout_layer,
        }
        return [named[token] for token in self.order if named[token] is not None]

    def call(self, inputs, training=None):
        x = inputs
        for token in self.order:
            if token == "norm" and self.norm_layer is not None:
                x = self.norm_layer(x, training=training)
            elif token == "act" and self.activation_layer is not None:
                x = self.activation_layer(x)
            elif token == "drop" and self.dropout_layer is not None:
                x = self.dropout_layer(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        activation = self.activation
        return {
            **super().get_config(),
            "order": "-".join(self.order),
            "norm": self.norm,
            "activation": None if activation is None else keras.activations.serialize(activation),
            "dropout": self.dropout,
            "rate": self.rate,
            "axis": self.axis,
            "seed": self.seed,
            "groups": self.groups,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }
