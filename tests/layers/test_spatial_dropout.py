import re

import keras
import numpy as np
import pytest
from layer_contract import TrainingNoiseContract
from layer_contract import assert_stacked_noise_equals_each_run_alone
from layer_contract import train_pass

from kreg.layers import SpatialDropout


class TestSpatialDropout1DContract(TrainingNoiseContract):
    layer_class = SpatialDropout
    input_shape = (6, 5)


class TestSpatialDropout2DContract(TrainingNoiseContract):
    layer_class = SpatialDropout
    input_shape = (4, 3, 5)


@pytest.mark.parametrize("shape", [(16, 7, 32), (16, 5, 4, 32), (16, 3, 2, 4, 32)])
def test_drops_whole_channels_of_each_example(shape):
    x = np.random.default_rng(0).uniform(0.5, 2.0, shape).astype("float32")
    y = train_pass(SpatialDropout(0.4, seed=3), x)
    spatial = tuple(range(1, len(shape) - 1))
    dropped = (y == 0).all(axis=spatial)  # (batch, channels)
    kept = (y != 0).all(axis=spatial)
    assert np.all(dropped | kept)  # a channel is dropped everywhere or nowhere
    np.testing.assert_allclose(y[np.broadcast_to(np.expand_dims(kept, spatial), shape)],
                               x[np.broadcast_to(np.expand_dims(kept, spatial), shape)] / 0.6, rtol=1e-6)
    # 512 channel decisions, dropped ~ Binomial(512, 0.4): 5 standard deviations
    n = dropped.size
    assert abs(dropped.sum() - 0.4 * n) < 5 * np.sqrt(n * 0.4 * 0.6)
    assert len({row.tobytes() for row in dropped}) > 1  # examples differ


def test_stacked_noise_of_images_equals_each_run_alone():
    sources = [SpatialDropout(rate, seed=seed) for rate, seed in ((0.5, 1), (0.0, 2), (0.25, 3))]
    x = np.random.default_rng(1).standard_normal((4, 3, 5, 5, 6)).astype("float32")
    assert_stacked_noise_equals_each_run_alone(sources, x)


def test_same_law_as_keras_spatial_dropout():
    x = np.ones((400, 3, 3, 100), "float32")
    ours = (train_pass(SpatialDropout(0.3, seed=0), x) == 0).mean()
    theirs = (train_pass(keras.layers.SpatialDropout2D(0.3, seed=0), x) == 0).mean()
    # 4e4 channel decisions each: 5 standard deviations of the difference
    assert abs(ours - theirs) < 5 * np.sqrt(2 * 0.21 / 40000)


@pytest.mark.parametrize("shape", [(4, 6), (2, 2, 2, 2, 2, 3)])
def test_refuses_inputs_of_another_rank(shape):
    message = re.escape(f"SpatialDropout needs inputs of rank 3, 4 or 5 (batch, ..., channels), got rank {len(shape)}")
    with pytest.raises(ValueError, match=message):
        SpatialDropout(0.2)(np.zeros(shape, "float32"), training=True)
