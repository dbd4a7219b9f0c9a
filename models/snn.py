"""`snn`: a self-normalizing network (Klambauer et al. 2017)."""

import keras

from kreg.layers import DenseBlock
from kreg.checks import check_positive_int
from kreg.models.common import Seeds
from kreg.models.common import classifier
from kreg.models.common import flat_input
from kreg.models.registry import register


@register(
    "snn",
    paper="Klambauer et al. 2017, Self-Normalizing Neural Networks",
    input="vector",
)
def snn(
    input_shape=(64,),
    num_classes=10,
    *,
    width=64,
    depth=4,
    rate=0.05,
    dropout="alpha",
    activation="selu",
    initializer="lecun_normal",
    seed=None,
):
    """Self-normalizing MLP: SELU, lecun_normal weights, alpha dropout, no norm.

    With the defaults, activations of standardized input stay near zero mean
    and unit variance through any depth; `activation="relu"` with
    `initializer="he_normal"` (and `dropout="standard"`) is the same net
    without that property, for comparison.

    Args:
        input_shape: shape of one example (flattened when of rank > 1).
        num_classes: number of output classes.
        width: units of every hidden layer.
        depth: number of hidden layers.
        rate: dropout rate in [0, 1) (the paper uses 0.05 to 0.1); 0 with `dropout=None`.
        dropout: "alpha" (keeps the SELU fixed point), or another NormDropout kind.
        activation: a Keras activation name.
        initializer: the kernels' initializer name.
        seed: int or None; fixes initial weights and dropout masks.

    Returns:
        An uncompiled `keras.Model` (softmax output).
    """
    seeds = Seeds(seed)
    width = check_positive_int("width", width)
    depth = check_positive_int("depth", depth)
    inputs, x = flat_input(input_shape)
    for i in range(1, depth + 1):
        x = DenseBlock(
            width,
            order="act-drop",
            norm=None,
            activation=activation,
            dropout=dropout,
            rate=rate,
            kernel_initializer=seeds.initializer(initializer),
            seed=seeds.next(),
            name=f"block_{i}",
        )(x)
    return keras.Model(inputs, classifier(x, num_classes, seeds), name="snn")
