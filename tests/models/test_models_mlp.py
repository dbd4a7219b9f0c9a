"""kreg.models.mlp: DenseBlocks with the studies' knobs."""

import keras
import numpy as np
import pytest

from kreg import layers
from kreg import models
from zoo_contract import ZooContract


class TestMlpContract(ZooContract):
    name = "mlp"


def test_knobs_reach_every_block():
    model = models.create("mlp", width=12, depth=3, rate=0.3, norm="layer",
                          order="act-drop-norm", dropout="gaussian", activation="tanh")
    blocks = [layer for layer in model.layers if isinstance(layer, layers.DenseBlock)]
    assert len(blocks) == 3
    for block in blocks:
        assert block.dense.units == 12
        assert block.block.order == ("act", "drop", "norm")
        assert isinstance(block.block.norm_layer, keras.layers.LayerNormalization)
        assert isinstance(block.block.dropout_layer, layers.GaussianDropout)
        assert block.block.dropout_layer.rate == 0.3
        assert block.dense.use_bias  # layer norm, not batch norm, follows


def test_batch_norm_first_drops_the_bias():
    model = models.create("mlp", norm="batch", order="norm-act-drop")
    assert not model.get_layer("block_1").dense.use_bias
    plain = models.create("mlp", norm=None)
    assert plain.get_layer("block_1").dense.use_bias
    assert plain.get_layer("block_1").block.norm_layer is None


def test_flattens_image_input():
    model = models.create("mlp", input_shape=(8, 8, 1), num_classes=3, width=8)
    assert isinstance(model.get_layer("flatten"), keras.layers.Flatten)
    out = model(np.zeros((2, 8, 8, 1), "float32"))
    assert tuple(out.shape) == (2, 3)


@pytest.mark.parametrize("arg", ["width", "depth"])
def test_bad_width_or_depth(arg):
    with pytest.raises(ValueError, match=rf"{arg} must be an int >= 1, got 0"):
        models.create("mlp", **{arg: 0})


def test_bad_rate_names_rate():
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\), got 1.5"):
        models.create("mlp", rate=1.5)


def test_no_dropout_needs_rate_zero():
    with pytest.raises(ValueError, match=r"rate must be 0 \(or None\) when dropout is None.*got 0.2"):
        models.create("mlp", dropout=None)  # the default rate 0.2 would be silently unused
    model = models.create("mlp", dropout=None, rate=0.0)
    assert model.get_layer("block_1").block.dropout_layer is None
