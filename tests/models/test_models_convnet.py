"""kreg.models.convnet: VGG-style Conv2DBlocks, image input only."""

import keras
import pytest

from kreg import layers
from kreg import models
from zoo_contract import ZooContract


class TestConvnetContract(ZooContract):
    name = "convnet"
    # The defaults are built in test_defaults_build_softmax_over_classes; the fit
    # uses one stage of 4 filters: XLA's CPU compile of the 2-stage train step
    # costs ~10 s on the JAX backend, the fit itself milliseconds.
    small = {"width": 4, "depth": 1}


def test_stages_widths_and_head():
    model = models.create("convnet", input_shape=(8, 8, 1), width=4, depth=2,
                          head_rate=0.5, dropout="spatial", norm="group")
    convs = [layer for layer in model.layers if isinstance(layer, layers.Conv2DBlock)]
    assert [layer.conv.filters for layer in convs] == [4, 4, 8, 8]
    assert isinstance(convs[0].block.dropout_layer, layers.SpatialDropout)
    assert isinstance(convs[0].block.norm_layer, keras.layers.GroupNormalization)
    assert model.get_layer("head_dropout").rate == 0.5
    assert isinstance(model.get_layer("head_dropout"), layers.StandardDropout)  # keyed: packs fully
    assert model.get_layer("stage_2_pool").output.shape[1:3] == (2, 2)


def test_no_head_dropout_by_default():
    names = [layer.name for layer in models.create("convnet").layers]
    assert "head_dropout" not in names


@pytest.mark.parametrize("shape", [(64,), (8, 8), (3, 3, 1)])
def test_input_shape_it_cannot_take(shape):
    with pytest.raises(ValueError, match=r"convnet needs input_shape \(height, width, channels\)"
                       r" with height and width >= 4.*got \(") as info:
        models.create("convnet", input_shape=shape)
    assert str(shape) in str(info.value)
