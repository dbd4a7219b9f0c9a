"""kreg.layers.linear_block: what every LinearBlock shares, `parts()` first."""

import keras
import numpy as np
import pytest
from block_reference import Conv1DBlock

from kreg.layers import Conv2DBlock
from kreg.layers import DenseBlock
from kreg.layers import NormDropout

def names(layer):
    return [type(part).__name__ for part in layer.parts()]


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"order": "norm-act-drop"}, ["Dense", "BatchNormalization", "Activation", "StandardDropout"]),
        ({"order": "act-drop-norm", "norm": "layer"}, ["Dense", "Activation", "StandardDropout", "LayerNormalization"]),
        ({"order": "drop-norm", "dropout": "alpha", "activation": "selu"}, ["Dense", "AlphaDropout", "BatchNormalization"]),
        ({"order": "norm-act", "norm": None}, ["Dense", "Activation"]),
        ({"order": "norm-act-drop", "norm": None, "activation": None, "dropout": None}, ["Dense"]),
    ],
)
def test_dense_block_parts(kwargs, expected):
    layer = DenseBlock(4, **kwargs)
    layer.build((None, 3))
    assert names(layer) == expected
    assert layer.parts()[0] is layer.dense
    assert layer.parts()[1:] == layer.block.parts()


def test_conv2d_block_parts():
    layer = Conv2DBlock(4, 3, order="act-norm-drop", norm="group", groups=2, dropout="spatial", rate=0.1)
    layer.build((None, 6, 6, 2))
    assert names(layer) == ["Conv2D", "Activation", "GroupNormalization", "SpatialDropout"]
    assert layer.parts()[0] is layer.conv


def test_parts_called_in_turn_give_the_block_output():
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    layer = DenseBlock(6, order="act-norm", norm="layer", activation="tanh")
    expected = keras.ops.convert_to_numpy(layer(x, training=False))
    y = x
    for part in layer.parts():
        y = part(y)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y), expected, rtol=1e-6)


def test_a_new_subclass_shares_parts_and_the_rest():
    layer = Conv1DBlock(3, 2, order="norm-act", name="c1d")
    y = layer(np.ones((2, 5, 4), "float32"), training=False)
    assert y.shape == (2, 4, 3)
    assert names(layer) == ["Conv1D", "BatchNormalization", "Activation"]
    assert not layer.conv.use_bias  # batch norm follows directly
    clone = Conv1DBlock.from_config(layer.get_config())
    clone.build((None, 5, 4))
    assert names(clone) == names(layer) and clone.block.order == ("norm", "act")


def test_parts_before_build_is_refused():
    with pytest.raises(ValueError, match=r"DenseBlock 'unbuilt' is not built"):
        DenseBlock(4, name="unbuilt").parts()
