"""`mlp`: a stack of DenseBlocks, the workhorse of the dropout x batch norm studies."""

from kreg.layers import DenseBlock
from kreg.models.common import checked_overrides
from kreg.models.common import flat_input
from kreg.models.common import seeded_block
from kreg.models.common import softmax_model
from kreg.models.registry import register


@register(
    "mlp",
    paper="Ioffe & Szegedy 2015 (batch norm); Srivastava et al. 2014 (dropout); "
    "Li et al. 2019 (their disharmony)",
    input="vector",
)
def mlp(
    input_shape=(64,),
    num_classes=10,
    *,
    width=64,
    depth=2,
    rate=0.2,
    norm="batch",
    order="norm-act-drop",
    dropout="standard",
    activation="relu",
    seed=None,
):
    """Multilayer perceptron of DenseBlocks: Dense, then norm/act/drop in any order.

    Image input is flattened first, so it takes any dataset.

    Args:
        input_shape: shape of one example.
        num_classes: number of output classes.
        width: units of every hidden layer.
        depth: number of hidden DenseBlocks.
        rate: dropout rate in [0, 1); 0 with `dropout=None`.
        norm: "batch", "layer", "group" or None.
        order: the block order, e.g. "norm-act-drop" or "act-drop-norm".
        dropout: "standard", "gaussian", "uniform", "alpha" or None.
        activation: a Keras activation name.
        seed: int or None; fixes initial weights and dropout masks.

    Returns:
        An uncompiled `keras.Model` (softmax output).
    """
    seeds, width, depth = checked_overrides(seed, width=width, depth=depth)
    inputs, x = flat_input(input_shape)
    for i in range(1, depth + 1):
        x = seeded_block(DenseBlock, width, seeds=seeds, order=order, norm=norm,
                         activation=activation, dropout=dropout, rate=rate, name=f"block_{i}")(x)
    return softmax_model(inputs, x, num_classes, seeds, "mlp")
