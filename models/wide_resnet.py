"""`wide_resnet`: WRN-depth-width (Zagoruyko & Komodakis 2016)."""

import keras
from keras import layers

from kreg.layers import Conv2DBlock
from kreg.layers import NormDropout
from kreg.models.common import check_image_shape
from kreg.models.common import checked_overrides
from kreg.models.common import seeded_block
from kreg.models.common import softmax_model
from kreg.models.registry import register


@register(
    "wide_resnet",
    paper="Zagoruyko & Komodakis 2016, Wide Residual Networks",
    input="image",
)
def wide_resnet(
    input_shape=(8, 8, 1),
    num_classes=10,
    *,
    depth=10,
    width=1,
    rate=0.3,
    norm="batch",
    order="norm-act-drop",
    dropout="standard",
    activation="relu",
    seed=None,
):
    """WRN-depth-width: pre-activation residual blocks, dropout between their convolutions.

    A 3x3 stem with 16 filters, then 3 groups of n = (depth - 4) / 6 blocks
    with `16*width`, `32*width`, `64*width` filters and strides 1, 2, 2, then
    norm-act, global average pooling and softmax. A block is
    norm-act -> Conv2DBlock(3x3, `order`: norm/act/dropout) -> 3x3 conv,
    added to the shortcut (a 1x1 projection of the pre-activated input where
    the shape changes), as in the paper's WRN-n-k with dropout.

    Args:
        input_shape: (height, width, channels), height and width >= 4.
        num_classes: number of output classes.
        depth: 6n + 4 (10, 16, 22, 28, ...).
        width: the widening factor k.
        rate: dropout rate between the two convolutions of a block, in [0, 1); 0 with `dropout=None`.
        norm: "batch", "layer", "group" or None.
        order: the order inside the block's middle NormDropout.
        dropout: "standard", "spatial", "gaussian", "uniform", "alpha" or None.
        activation: a Keras activation name.
        seed: int or None; fixes initial weights and dropout masks.

    Returns:
        An uncompiled `keras.Model` (softmax output).
    """
    seeds, depth, width = checked_overrides(seed, depth=depth, width=width)
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"depth must be 6n + 4 with n >= 1 (10, 16, 22, ...), got {depth}")
    check_image_shape("wide_resnet", input_shape, 2)

    def conv(filters, kernel_size, strides, name):
        return layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            use_bias=False,
            kernel_initializer=seeds.initializer("he_normal"),
            name=name,
        )

    def pre_activation(name):
        return NormDropout("norm-act", norm=norm, activation=activation, dropout=None, name=name)

    inputs = keras.Input(input_shape, name="inputs")
    x = conv(16, 3, 1, "stem")(inputs)
    channels = 16
    for group, (filters, stride) in enumerate(zip((16, 32, 64), (1, 2, 2)), 1):
        filters *= width
        for block in range(1, (depth - 4) // 6 + 1):
            prefix = f"group_{group}_block_{block}"
            strides = stride if block == 1 else 1
            h = pre_activation(f"{prefix}_preact")(x)
            if channels != filters or strides != 1:
                x = conv(filters, 1, strides, f"{prefix}_shortcut")(h)
            h = seeded_block(Conv2DBlock, filters, 3, seeds=seeds, order=order, norm=norm,
                             activation=activation, dropout=dropout, rate=rate, strides=strides,
                             padding="same", name=f"{prefix}_conv_1")(h)
            h = conv(filters, 3, 1, f"{prefix}_conv_2")(h)
            x = layers.Add(name=f"{prefix}_add")([x, h])
            channels = filters
    x = pre_activation("final_preact")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return softmax_model(inputs, x, num_classes, seeds, "wide_resnet")
