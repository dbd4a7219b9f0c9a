"""kreg.models.wide_resnet: WRN-depth-width with dropout between a block's convolutions."""

import keras
import pytest

from kreg import layers
from kreg import models
from zoo_contract import ZooContract


class TestWideResnetContract(ZooContract):
    name = "wide_resnet"


def convolutions(model):
    convs = []
    for layer in model.layers:
        if isinstance(layer, layers.Conv2DBlock):
            convs.append(layer.conv)
        elif isinstance(layer, keras.layers.Conv2D) and "shortcut" not in layer.name:
            convs.append(layer)
    return convs


@pytest.mark.parametrize("depth, width", [(10, 2), (16, 1)])
def test_depth_counts_convolutions_and_width_widens(depth, width):
    # WRN-d-k: d = 6n + 4 counts the stem, 2 convs in each of 3n blocks, and the
    # classifier (plus shortcut projections, not counted): 1 + 6n + 1 + ... -> the
    # 3x3 convolutions are 1 + 6n = d - 3.
    model = models.create("wide_resnet", depth=depth, width=width)
    convs = convolutions(model)
    assert len(convs) == depth - 3
    # the stem has 16 filters; the groups 16k, 32k, 64k
    assert {conv.filters for conv in convs} == {16, 16 * width, 32 * width, 64 * width}
    assert model.get_layer("group_3_block_1_add").output.shape[1:] == (2, 2, 64 * width)


def test_dropout_sits_between_the_two_convolutions():
    model = models.create("wide_resnet", rate=0.4, dropout="spatial")
    middle = model.get_layer("group_1_block_1_conv_1")
    assert middle.block.order == ("norm", "act", "drop")
    assert isinstance(middle.block.dropout_layer, layers.SpatialDropout)
    assert middle.block.dropout_layer.rate == 0.4
    # the block's second convolution reads the dropout's output
    second = model.get_layer("group_1_block_1_conv_2")
    assert second.input is middle.output


@pytest.mark.parametrize("depth", [8, 12])
def test_depth_must_be_6n_plus_4(depth):
    with pytest.raises(ValueError, match=rf"depth must be 6n \+ 4.*got {depth}"):
        models.create("wide_resnet", depth=depth)


def test_input_too_small():
    with pytest.raises(ValueError, match=r"wide_resnet needs .* >= 4 .*got \(2, 2, 1\)"):
        models.create("wide_resnet", input_shape=(2, 2, 1))
