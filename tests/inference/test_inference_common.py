import keras
import numpy as np
import pytest

from kreg.inference.common import batchnorm_layers
from kreg.inference.common import check_input_shape
from kreg.inference.common import slices
from kreg.layers import DenseBlock

L = keras.layers


def test_batchnorm_layers_finds_nested_ones():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, L.BatchNormalization(name="inner_bn")(inner_in))
    inputs = keras.Input((4,))
    x = DenseBlock(4, order="norm", name="block")(inner(inputs))
    x = L.BatchNormalization(name="outer_bn")(L.LayerNormalization()(x))
    names = sorted(bn.name for bn in batchnorm_layers(keras.Model(inputs, x)))
    assert names == ["inner_bn", "norm", "outer_bn"]  # "norm": the block's BN


def test_slices_cover_everything_in_order():
    x = {"a": np.arange(10), "b": np.arange(10) * 2}
    batches = list(slices(x, 4))
    assert [len(b["a"]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b["b"] for b in batches]), x["b"])


def test_check_input_shape_multi_input():
    a, b = keras.Input((3,)), keras.Input((2, 2))
    model = keras.Model([a, b], L.Concatenate()([a, L.Flatten()(b)]))
    check_input_shape(model, [np.zeros((5, 3)), np.zeros((5, 2, 2))], "x")
    with pytest.raises(ValueError, match=r"x has 1 input array\(s\), the model takes 2"):
        check_input_shape(model, [np.zeros((5, 3))], "x")
    expected = r"x has shape \(5, 2, 3\), the model expects \(None, 2, 2\)"
    with pytest.raises(ValueError, match=expected):
        check_input_shape(model, [np.zeros((5, 3)), np.zeros((5, 2, 3))], "x")
