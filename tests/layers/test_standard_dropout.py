import re

import keras
import numpy as np
import pytest
from layer_contract import TrainingNoiseContract
from layer_contract import assert_stacked_noise_equals_each_run_alone
from layer_contract import train_pass

from kreg.layers import StandardDropout


class TestStandardDropoutContract(TrainingNoiseContract):
    layer_class = StandardDropout


class TestStandardDropoutNoiseShapeContract(TrainingNoiseContract):
    layer_class = StandardDropout
    input_shape = (6, 5)

    def make_layer(self):
        return StandardDropout(0.2, noise_shape=(None, 1, 5), seed=1)


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_drops_rate_and_scales_the_rest_as_keras_dropout(rate):
    x = np.random.default_rng(0).uniform(0.5, 2.0, (1000, 100)).astype("float32")
    y = train_pass(StandardDropout(rate, seed=3), x)
    dropped = y == 0
    np.testing.assert_allclose(y[~dropped], x[~dropped] / (1 - rate), rtol=1e-6)
    # Dropped count ~ Binomial(N, rate), N = 1e5: 5 standard deviations.
    n = x.size
    assert abs(dropped.sum() - n * rate) < 5 * np.sqrt(n * rate * (1 - rate))
    # E[y] = x: the mean of y / x is 1 within 5 standard errors
    # (y / x is 0 or 1 / q: variance rate / q).
    ratio = (y / x).astype("float64")
    assert abs(ratio.mean() - 1) < 5 * np.sqrt(rate / (1 - rate) / n)


def test_same_statistics_as_keras_dropout():
    # Not the same masks (keras draws from keras.random), the same law: the
    # drop fractions of both agree within 5 standard deviations of their difference.
    x = np.ones((500, 200), "float32")
    ours = (train_pass(StandardDropout(0.3, seed=0), x) == 0).mean()
    theirs = (train_pass(keras.layers.Dropout(0.3, seed=0), x) == 0).mean()
    assert abs(ours - theirs) < 5 * np.sqrt(2 * 0.21 / x.size)


@pytest.mark.parametrize("noise_shape, shared", [((None, 1, 8), (1,)), ((1, None, None), (0,)), ((None, 1, 1), (1, 2))])
def test_noise_shape_shares_the_mask_along_its_unit_axes(noise_shape, shared):
    x = np.ones((64, 10, 8), "float32")
    dropped = train_pass(StandardDropout(0.3, noise_shape=noise_shape, seed=5), x) == 0
    for axis in shared:
        np.testing.assert_array_equal(dropped, np.broadcast_to(dropped.take([0], axis), x.shape))
    assert 0 < dropped.mean() < 1


def test_stacked_noise_with_a_noise_shape_equals_each_run_alone():
    sources = [StandardDropout(rate, noise_shape=(None, 1, 5), seed=seed) for rate, seed in ((0.4, 1), (0.2, 2))]
    x = np.random.default_rng(1).standard_normal((8, 2, 6, 5)).astype("float32")
    assert_stacked_noise_equals_each_run_alone(sources, x)


def test_noise_shape_with_unknown_batch_trains_compiled_and_survives_saving(tmp_path):
    layer = StandardDropout(0.2, noise_shape=(None, 1, 5), seed=1)
    inputs = keras.Input((6, 5))
    model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    x = np.random.default_rng(0).standard_normal((8, 6, 5)).astype("float32")
    model.fit(x, np.zeros((8, 6, 2), "float32"), batch_size=4, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert loaded.layers[1].get_config() == layer.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_weights_saved_with_keras_dropout_load_where_standard_dropout_replaced_it(tmp_path):
    # A zoo model's weights file from the days of keras.layers.Dropout keeps loading.
    def model(dropout):
        inputs = keras.Input((4,))
        hidden = dropout(keras.layers.Dense(6, name="hidden")(inputs))
        return keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))

    old = model(keras.layers.Dropout(0.5, seed=1, name="head_dropout"))
    old.save_weights(tmp_path / "old.weights.h5")
    new = model(StandardDropout(0.5, seed=1, name="head_dropout"))
    new.load_weights(tmp_path / "old.weights.h5")
    for got, want in zip(new.weights, old.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want))
    assert isinstance(new.get_layer("head_dropout").seed_generator, keras.random.SeedGenerator)
    assert not hasattr(StandardDropout(0.0), "seed_generator")  # as keras.layers.Dropout


@pytest.mark.parametrize("noise_shape", [(None, 5), (None, 3, 5)])
def test_refuses_noise_shape_that_does_not_fit_the_input(noise_shape):
    layer = StandardDropout(0.1, noise_shape=noise_shape)
    message = re.escape(f"noise_shape={noise_shape}") + ".*" + re.escape("(4, 6, 5)")
    with pytest.raises(ValueError, match=message):
        layer(np.zeros((4, 6, 5), "float32"), training=True)


def test_refuses_noise_shape_that_is_not_a_shape():
    with pytest.raises(ValueError, match=re.escape("noise_shape must be a tuple of ints or None, got '3'")):
        StandardDropout(0.1, noise_shape="3")
