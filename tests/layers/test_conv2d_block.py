"""Tests of kreg.layers.Conv2DBlock: Conv2D (no activation) then NormDropout."""

import keras
import numpy as np
import pytest
from layer_contract import LayerContract
from layer_contract import assert_refused_by_name_and_value
from block_reference import assert_block_equals_reference

from kreg.layers import Conv2DBlock
from kreg.layers import NormDropout
from kreg.layers import SpatialDropout
from kreg.layers import StandardDropout


# (batch norm + standard dropout: see TestDenseBatchStandardContract in test_dense_block.py)
class TestConvGroupSpatialContract(LayerContract):
    input_shape = (7, 7, 3)

    def make_layer(self):
        return Conv2DBlock(
            4, (3, 2), strides=2, order="act-norm-drop", norm="group", groups=2,
            dropout="spatial", rate=0.2, seed=1,
        )


@pytest.mark.parametrize(
    "norm, order, use_bias, expected",
    [
        ("batch", "norm-act-drop", None, False),
        ("batch", "act-norm", None, True),
        ("group", "norm-act-drop", None, True),
        ("batch", "norm-act-drop", True, True),
    ],
)
def test_use_bias_resolution(norm, order, use_bias, expected):
    layer = Conv2DBlock(4, 3, order=order, norm=norm, groups=2, use_bias=use_bias)
    layer.build((None, 5, 5, 2))
    assert layer.conv.use_bias is expected
    assert (layer.conv.bias is not None) is expected


@pytest.mark.parametrize(
    "order, norm, dropout", [("norm-act-drop", "batch", "standard"), ("drop-act-norm", "group", "spatial")]
)
def test_equals_conv2d_then_hand_stacked_layers(order, norm, dropout):
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, (4, 9, 9, 3)).astype("float32")
    layer = Conv2DBlock(
        4, 3, strides=2, padding="same", order=order, norm=norm, groups=2,
        activation="sigmoid", dropout=dropout, rate=0.3, seed=5,
    )
    layer.build(x.shape)
    assert type(layer.conv) is keras.layers.Conv2D and type(layer.block) is NormDropout
    assert layer.conv.activation is keras.activations.linear and layer.conv.groups == 1
    conv = keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=layer.conv.use_bias)
    parts = {
        "norm": (keras.layers.BatchNormalization() if norm == "batch"
                 else keras.layers.GroupNormalization(groups=2)),
        "act": keras.layers.Activation("sigmoid"),
        "drop": (StandardDropout(0.3, seed=5) if dropout == "standard" else SpatialDropout(0.3, seed=5)),
    }
    assert_block_equals_reference(layer, conv, parts, x, order, rng, atol=1e-5)


def test_output_shape_follows_strides_and_padding():
    layer = Conv2DBlock(5, (3, 2), strides=(2, 1), padding="valid")
    # rows: (9 - 3) // 2 + 1 = 4; cols: (8 - 2) // 1 + 1 = 7
    assert layer.compute_output_shape((None, 9, 8, 3)) == (None, 4, 7, 5)
    assert tuple(layer(keras.Input((9, 8, 3))).shape) == (None, 4, 7, 5)


def test_groups_belong_to_the_group_norm():
    layer = Conv2DBlock(8, 1, norm="group", groups=4)
    layer.build((None, 3, 3, 2))
    assert layer.block.norm_layer.groups == 4
    assert layer.conv.groups == 1
    assert layer.get_config()["groups"] == 4


@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        ({"filters": 0, "kernel_size": 3}, ["filters", "0"]),
        ({"filters": 2.5, "kernel_size": 3}, ["filters", "2.5"]),
        ({"filters": 4, "kernel_size": 3, "data_format": "channels_first"}, ["data_format", "'channels_first'"]),
        ({"filters": 4, "kernel_size": 3, "dropout": "dropblock"}, ["dropout", "'dropblock'"]),
        ({"filters": 4, "kernel_size": 3, "rate": -0.1}, ["rate", "-0.1"]),
        ({"filters": 4, "kernel_size": 3, "use_bias": 1}, ["use_bias must be True or False, got 1"]),
        ({"filters": 4, "kernel_size": 3, "dropout": None, "rate": 0.2}, ["rate must be 0", "got 0.2"]),
    ],
)
def test_bad_arguments_are_refused_by_name_and_value(kwargs, fragments):
    assert_refused_by_name_and_value(Conv2DBlock, kwargs, fragments)
