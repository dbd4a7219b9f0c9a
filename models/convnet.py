"""`convnet`: a small VGG-style network of Conv2DBlocks (Simonyan & Zisserman 2015)."""

import keras
from keras import layers

from kreg.layers import Conv2DBlock
from kreg.checks import check_rate
from kreg.models.common import check_image_shape
from kreg.models.common import checked_overrides
from kreg.models.common import seeded_block
from kreg.models.common import softmax_model
from kreg.models.registry import register


@register(
    "convnet",
    paper="Simonyan & Zisserman 2015 (VGG); Ioffe & Szegedy 2015 (batch norm)",
    input="image",
)
def convnet(
    input_shape=(8, 8, 1),
    num_classes=10,
    *,
    width=16,
    depth=2,
    rate=0.1,
    head_rate=0.0,
    norm="batch",
    order="norm-act-drop",
    dropout="standard",
    activation="relu",
    seed=None,
):
    """VGG-style stages of two 3x3 Conv2DBlocks and a 2x2 max pool, then a dropout head.

    Stage s (from 0) has `width * 2**s` filters. After the last stage: global
    average pooling, dropout with `head_rate` (no layer when 0), softmax.

    Args:
        input_shape: (height, width, channels), height and width >= 2**depth.
        num_classes: number of output classes.
        width: filters of the first stage.
        depth: number of stages (each halves height and width).
        rate: dropout rate inside every Conv2DBlock, in [0, 1); 0 with `dropout=None`.
        head_rate: dropout rate before the classifier, in [0, 1).
        norm: "batch", "layer", "group" or None.
        order: the block order, e.g. "norm-act-drop".
        dropout: "standard", "spatial", "gaussian", "uniform", "alpha" or None.
        activation: a Keras activation name.
        seed: int or None; fixes initial weights and dropout masks.

    Returns:
        An uncompiled `keras.Model` (softmax output).
    """
    seeds, width, depth = checked_overrides(seed, width=width, depth=depth)
    head_rate = check_rate("head_rate", head_rate)
    check_image_shape("convnet", input_shape, depth)
    inputs = keras.Input(input_shape, name="inputs")
    x = inputs
    for stage in range(depth):
        for conv in (1, 2):
            x = seeded_block(Conv2DBlock, width * 2**stage, 3, seeds=seeds, order=order, norm=norm,
                             activation=activation, dropout=dropout, rate=rate, padding="same",
                             name=f"stage_{stage + 1}_conv_{conv}")(x)
        x = layers.MaxPooling2D(2, name=f"stage_{stage + 1}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return softmax_model(inputs, x, num_classes, seeds, "convnet", rate=head_rate)
