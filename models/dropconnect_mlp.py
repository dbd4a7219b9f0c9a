"""`dropconnect_mlp`: an MLP regularized by DropConnect (Wan et al. 2013)."""

from kreg.layers import DropConnectDense
from kreg.layers import NormDropout
from kreg.models.common import checked_overrides
from kreg.models.common import flat_input
from kreg.models.common import seeded_block
from kreg.models.common import softmax_model
from kreg.models.registry import register


@register(
    "dropconnect_mlp",
    paper="Wan et al. 2013, Regularization of Neural Networks using DropConnect",
    input="vector",
)
def dropconnect_mlp(
    input_shape=(64,),
    num_classes=10,
    *,
    width=64,
    depth=2,
    rate=0.3,
    mask="batch",
    norm=None,
    activation="relu",
    seed=None,
):
    """MLP whose hidden layers drop weights (DropConnectDense), not activations.

    Each hidden layer is `DropConnectDense` (no activation), then a
    `NormDropout` with order "norm-act" (the norm skipped when None).

    Args:
        input_shape: shape of one example (flattened when of rank > 1).
        num_classes: number of output classes.
        width: units of every hidden layer.
        depth: number of hidden layers.
        rate: probability of dropping each weight, in [0, 1).
        mask: "batch" (one weight mask per step) or "example" (one per example).
        norm: None, "batch", "layer" or "group", after each DropConnectDense.
        activation: a Keras activation name.
        seed: int or None; fixes initial weights and DropConnect masks.

    Returns:
        An uncompiled `keras.Model` (softmax output).
    """
    seeds, width, depth = checked_overrides(seed, width=width, depth=depth)
    inputs, x = flat_input(input_shape)
    for i in range(1, depth + 1):
        # batch norm's beta replaces the bias
        x = seeded_block(DropConnectDense, width, rate, seeds=seeds, use_bias=norm != "batch",
                         mask=mask, name=f"dropconnect_{i}")(x)
        x = NormDropout("norm-act", norm=norm, activation=activation, dropout=None,
                        name=f"block_{i}")(x)
    return softmax_model(inputs, x, num_classes, seeds, "dropconnect_mlp")
