"""`cnn1d`: the small 1-D convolutional network of MNIST-1D (Greydanus 2020)."""

import keras
from keras import layers

from kreg.layers import NormDropout
from kreg.models.common import checked_overrides
from kreg.models.common import softmax_model
from kreg.models.registry import register

# (kernel size, stride, zero padding on each side) of the three convolutions,
# as in the paper's ConvBase: 40 -> 19 -> 10 -> 5 positions.
CONVOLUTIONS = ((5, 2, 1), (3, 2, 1), (3, 2, 1))


# kreg.models.registry knows the input kinds "vector" and "image"; "image"
# is the structured form with a channel axis, which `kreg.datasets.load(...,
# as_images=True)` gives mnist1d as sequences (40, 1).
@register(
    "cnn1d",
    paper="Greydanus 2020, Scaling down deep learning (MNIST-1D); "
    "Ioffe & Szegedy 2015 (batch norm)",
    input="image",
)
def cnn1d(
    input_shape=(40, 1),
    num_classes=10,
    *,
    channels=25,
    rate=0.1,
    norm="batch",
    order="norm-act-drop",
    dropout="standard",
    activation="relu",
    seed=None,
):
    """1-D conv net of MNIST-1D: three strided Conv1D + norm/act/drop, then a linear head.

    The paper's ConvBase: convolutions of kernel 5, 3, 3, stride 2 and zero
    padding 1 (PyTorch's `padding=1`, here a `ZeroPadding1D(1)` before a
    "valid" convolution), each followed by a kreg `NormDropout` block; the
    last feature map is flattened into the softmax classifier. With
    `norm=None, rate=0` it is the paper's network (ReLU, 5,210 parameters
    at 25 channels). The convolution has no bias when batch norm directly
    follows it.

    Args:
        input_shape: (length, channels), length >= 3; MNIST-1D is (40, 1)
            (`kreg.datasets.load("mnist1d", as_images=True)`).
        num_classes: number of output classes.
        channels: filters of every convolution.
        rate: dropout rate inside every block, in [0, 1).
        norm: "batch", "layer", "group" or None.
        order: the block order, e.g. "norm-act-drop".
        dropout: "standard", "spatial", "gaussian", "uniform", "alpha" or None.
        activation: a Keras activation name.
        seed: int or None; fixes initial weights and dropout masks.

    Returns:
        An uncompiled `keras.Model` (softmax output).

    Example:

    >>> model = cnn1d(norm=None, rate=0.0, seed=0)
    >>> model.count_params()
    5210
    """
    seeds, channels = checked_overrides(seed, channels=channels)
    if len(input_shape) != 2 or input_shape[0] < 3:
        raise ValueError(
            "cnn1d needs input_shape (length, channels) with length >= 3, got "
            f"{input_shape}; kreg.datasets.load(name, as_images=True) gives mnist1d as "
            "(40, 1)"
        )
    inputs = keras.Input(input_shape, name="inputs")
    x = inputs
    for i, (kernel_size, strides, padding) in enumerate(CONVOLUTIONS, 1):
        kernel_initializer = seeds.initializer("he_normal")  # seeds in DenseBlock's order
        block = NormDropout(
            order=order,
            norm=norm,
            activation=activation,
            dropout=dropout,
            rate=rate,
            seed=seeds.next(),
            name=f"block_{i}",
        )
        x = layers.ZeroPadding1D(padding, name=f"pad_{i}")(x)
        x = layers.Conv1D(
            channels,
            kernel_size,
            strides=strides,
            use_bias=not block.starts_with_batch_norm,
            kernel_initializer=kernel_initializer,
            name=f"conv_{i}",
        )(x)
        x = block(x)
    x = layers.Flatten(name="flatten")(x)
    return softmax_model(inputs, x, num_classes, seeds, "cnn1d")
