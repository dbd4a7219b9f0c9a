"""kreg.models.dropconnect_mlp: hidden layers drop weights, inference is deterministic."""

import keras
import numpy as np

from kreg import layers
from kreg import models
from zoo_contract import ZooContract


class TestDropConnectMlpContract(ZooContract):
    name = "dropconnect_mlp"


def test_hidden_layers_are_dropconnect_with_knobs():
    model = models.create("dropconnect_mlp", width=8, depth=3, rate=0.4, mask="example",
                          norm="batch")
    hidden = [layer for layer in model.layers if isinstance(layer, layers.DropConnectDense)]
    assert len(hidden) == 3
    for layer in hidden:
        assert (layer.units, layer.rate, layer.mask) == (8, 0.4, "example")
        assert not layer.use_bias  # batch norm's beta replaces it
    block = model.get_layer("block_1")
    assert isinstance(block.norm_layer, keras.layers.BatchNormalization)
    assert block.dropout_layer is None  # no activation dropout on top of DropConnect


def test_training_is_stochastic_inference_is_not():
    model = models.create("dropconnect_mlp", seed=0, rate=0.5)
    x = np.random.default_rng(0).standard_normal((8, 64)).astype("float32")
    a = keras.ops.convert_to_numpy(model(x, training=True))
    b = keras.ops.convert_to_numpy(model(x, training=True))
    assert not np.allclose(a, b)  # a fresh weight mask per call
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model(x, training=False)),
        keras.ops.convert_to_numpy(model(x, training=False)),
    )
