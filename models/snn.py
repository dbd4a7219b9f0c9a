"""`snn`: a self-normalizing network (Klambauer et al. 2017)."""

from kreg.layers import DenseBlock
from kreg.models.common import checked_overrides
from kreg.models.common import flat_input
from kreg.models.common import seeded_block
from kreg.models.common import softmax_model
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
    seeds, width, depth = checked_overrides(seed, width=width, depth=depth)
    inputs, x = flat_input(input_shape)
    for i in range(1, depth + 1):
        x = seeded_block(DenseBlock, width, seeds=seeds, initializer=initializer, order="act-drop",
                         norm=None, activation=activation, dropout=dropout, rate=rate,
                         name=f"block_{i}")(x)
    return softmax_model(inputs, x, num_classes, seeds, "snn")
