import re

import keras
import numpy as np
import pytest
from layer_contract import TrainingNoiseContract
from layer_contract import train_pass

from kreg.layers import AlphaDropout
from kreg.ops.alpha_dropout import ALPHA_PRIME
from kreg.ops.alpha_dropout import alpha_dropout_affine


class TestAlphaDropoutContract(TrainingNoiseContract):
    layer_class = AlphaDropout


def dropped(y):
    """Boolean mask of the dropped entries: they all hold the one value a*alpha'+b."""
    values, counts = np.unique(y, return_counts=True)
    return y == values[np.argmax(counts)], values[np.argmax(counts)]


# N = 1e6 values. The output mean and variance equal the fixed point (mu, nu)
# exactly in expectation (see kreg/ops/alpha_dropout.py); the sample estimates
# have standard errors sqrt(nu / N) <= 0.0014 for the mean and
# sqrt((m4 - nu**2) / N) for the variance, where m4, the 4th central moment of
# the mixture "N(a*mu+b, a**2*nu) w.p. q, a*alpha'+b w.p. rate", gives
# 0.0011..0.0013 for (0, 1) and 0.0023..0.0026 for (0.5, 2) at these rates.
# The tolerances 0.01 (mean) and 0.02 (variance) are >= 7 standard errors, while
# a wrong (a, b) (e.g. Keras' (0, 1) constants used for (0.5, 2)) is off by > 0.1.
@pytest.mark.parametrize("rate", [0.05, 0.1, 0.2])
@pytest.mark.parametrize("mean, variance", [(0.0, 1.0), (0.5, 2.0)])
def test_keeps_fixed_point_and_drops_rate(rate, mean, variance):
    rng = np.random.default_rng(42)
    x = (mean + np.sqrt(variance) * rng.standard_normal((1000, 1000))).astype("float32")
    layer = AlphaDropout(rate, seed=3, mean=mean, variance=variance)
    y = train_pass(layer, x)
    assert abs(y.mean() - mean) < 0.01
    assert abs(y.var() - variance) < 0.02
    is_dropped, value = dropped(y)
    a, b = alpha_dropout_affine(rate, mean, variance)
    np.testing.assert_allclose(value, a * ALPHA_PRIME + b, rtol=1e-6)
    # Dropped count ~ Binomial(N, rate): sd = sqrt(N * rate * (1 - rate)) <= 400;
    # allow 5 sd.
    n = y.size
    assert abs(is_dropped.sum() - n * rate) < 5 * np.sqrt(n * rate * (1 - rate))
    # Kept entries are exactly the affine map of the input.
    np.testing.assert_allclose(y[~is_dropped], a * x[~is_dropped] + b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "noise_shape, shared_axes",
    [((None, 1, 32), (1,)), ((1, None, None), (0,)), ((None, 1, 1), (1, 2))],
)
def test_noise_shape_shares_mask_along_its_unit_axes(noise_shape, shared_axes):
    x = np.random.default_rng(0).standard_normal((64, 10, 32)).astype("float32")
    is_dropped, _ = dropped(train_pass(AlphaDropout(0.3, noise_shape=noise_shape, seed=5), x))
    for axis in shared_axes:
        # every position along a shared axis repeats the first one's decision
        np.testing.assert_array_equal(is_dropped, np.broadcast_to(is_dropped.take([0], axis), x.shape))
    # ... and the mask still varies along the other axes (the pattern is random,
    # 0.3 of the mask entries dropped: P(all equal) is astronomically small).
    assert 0 < is_dropped.mean() < 1


def test_noise_shape_with_unknown_batch_trains_compiled_and_survives_saving(tmp_path):
    # A None entry of noise_shape is resolved from the symbolic batch size.
    layer = AlphaDropout(0.2, noise_shape=(None, 1, 5), seed=1, mean=0.5, variance=2.0)
    inputs = keras.Input((6, 5))
    model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    x = np.random.default_rng(0).standard_normal((8, 6, 5)).astype("float32")
    model.fit(x, np.zeros((8, 6, 2), "float32"), batch_size=4, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert loaded.layers[1].get_config() == layer.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("variance", [0.0, -1.0, float("inf")])
def test_refuses_non_positive_variance(variance):
    with pytest.raises(ValueError, match=re.escape(f"variance must be a finite number > 0, got {variance}")):
        AlphaDropout(0.1, variance=variance)


def test_refuses_non_finite_mean():
    with pytest.raises(ValueError, match=re.escape("mean must be a finite number, got nan")):
        AlphaDropout(0.1, mean=float("nan"))


@pytest.mark.parametrize("noise_shape", [(None, 5), (None, 3, 5), (None, 1, 5, 1)])
def test_refuses_noise_shape_that_does_not_fit_the_input(noise_shape):
    layer = AlphaDropout(0.1, noise_shape=noise_shape)
    message = re.escape(f"noise_shape={noise_shape}") + ".*" + re.escape("(4, 6, 5)")
    with pytest.raises(ValueError, match=message):
        layer(np.zeros((4, 6, 5), "float32"), training=True)


def test_refuses_noise_shape_that_is_not_a_shape():
    with pytest.raises(ValueError, match=re.escape("noise_shape must be a tuple of ints or None, got '3'")):
        AlphaDropout(0.1, noise_shape="3")
    with pytest.raises(ValueError, match=re.escape("noise_shape=(None, 0) must be an int >= 1, got 0")):
        AlphaDropout(0.1, noise_shape=(None, 0))


