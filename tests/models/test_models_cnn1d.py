"""kreg.models.cnn1d: the MNIST-1D conv net, sequences (length, channels) only."""

import functools

import keras
import pytest

from kreg import datasets
from kreg import layers
from kreg import models
from zoo_contract import ZooContract
from zoo_contract import zoo_info


@functools.lru_cache(maxsize=None)
def mnist1d_sequences():
    return datasets.load("mnist1d", seed=0, as_images=True)


class TestCnn1dContract(ZooContract):
    name = "cnn1d"
    small = {"channels": 4}
    weights = "mnist1d"  # cnn1d ships MNIST-1D weights, not digits ones
    least_accuracy = 0.8  # trained (paper's plain CNN: ~0.94), not chance

    def data(self):
        # The contract's digits are no sequences: MNIST-1D as (40, 1), which is
        # what studies and `train` feed an "image" model (as_images=True).
        return mnist1d_sequences()

    def test_shipped_weights_are_for_mnist1d_sequences(self):
        entry = zoo_info(self.name).weights["mnist1d"]
        assert (entry["dataset"], entry["as_images"], entry["input_shape"]) == (
            "mnist1d", True, [40, 1])


def test_paper_architecture_without_norm_and_dropout():
    model = models.create("cnn1d", norm=None, rate=0.0)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert [(c.filters, c.kernel_size, c.strides, c.use_bias) for c in convs] == [
        (25, (5,), (2,), True), (25, (3,), (2,), True), (25, (3,), (2,), True)]
    # PyTorch's padding=1: 40 -> 19 -> 10 -> 5 positions, 5 x 25 = 125 features.
    assert [c.output.shape[1] for c in convs] == [19, 10, 5]
    assert model.get_layer("flatten").output.shape[1:] == (125,)
    assert model.count_params() == 5210  # the paper's ConvBase


def test_blocks_follow_overrides_and_drop_redundant_bias():
    model = models.create("cnn1d", norm="batch", order="act-drop-norm", dropout="spatial",
                          rate=0.3, channels=8, seed=1)
    blocks = [layer for layer in model.layers if isinstance(layer, layers.NormDropout)]
    assert len(blocks) == 3 and all(b.order == ("act", "drop", "norm") for b in blocks)
    assert isinstance(blocks[0].dropout_layer, layers.SpatialDropout)
    assert blocks[0].dropout_layer.rate == 0.3
    assert len({b.seed for b in blocks}) == 3  # one seed each
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert all(c.use_bias for c in convs)  # batch norm does not follow directly
    first = models.create("cnn1d", norm="batch", order="norm-act-drop")
    assert not any(c.use_bias for c in first.layers if isinstance(c, keras.layers.Conv1D))


@pytest.mark.parametrize("shape", [(40,), (2, 1), (8, 8, 1)])
def test_input_shape_it_cannot_take(shape):
    with pytest.raises(ValueError, match=r"cnn1d needs input_shape \(length, channels\) with "
                       r"length >= 3, got \(") as info:
        models.create("cnn1d", input_shape=shape)
    assert str(shape) in str(info.value) and "as_images=True" in str(info.value)


def test_channels_checked():
    with pytest.raises(ValueError, match=r"channels must be an int >= 1, got 0"):
        models.create("cnn1d", channels=0)


def test_registered_as_structured_input():
    about = models.info("cnn1d")
    assert about.input == "image" and about.input_shape == (40, 1)
    assert "Greydanus 2020" in about.paper
    assert {"rate", "norm", "order", "seed"} <= set(about.defaults)
