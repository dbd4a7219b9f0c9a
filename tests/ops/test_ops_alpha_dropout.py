import keras
import numpy as np
import pytest

from kreg.ops.alpha_dropout import ALPHA_PRIME
from kreg.ops.alpha_dropout import SELU_ALPHA
from kreg.ops.alpha_dropout import SELU_LAMBDA
from kreg.ops.alpha_dropout import alpha_dropout
from kreg.ops.alpha_dropout import alpha_dropout_affine
from kreg.ops.alpha_dropout import resolve_noise_shape


def test_selu_constants_match_keras_selu():
    # selu(x) = lambda * alpha * (exp(x) - 1) for x < 0: its limit at -inf is alpha'.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.activations.selu(-50.0)), ALPHA_PRIME, rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.activations.selu(1.0)), SELU_LAMBDA, rtol=1e-6)
    assert ALPHA_PRIME == -SELU_LAMBDA * SELU_ALPHA


def test_affine_for_rate_0_1_matches_keras_pytorch_and_paper():
    a, b = alpha_dropout_affine(0.1)
    assert round(a, 6) == 0.921285
    assert round(b, 6) == 0.161971


@pytest.mark.parametrize("rate", [0.05, 0.3, 0.7, 0.95])
def test_affine_for_the_selu_fixed_point_equals_keras_closed_form(rate):
    # keras.layers.AlphaDropout: a = ((1-r)(1 + r alpha'^2))^-1/2, b = -a alpha' r
    a, b = alpha_dropout_affine(rate)
    keras_a = ((1 - rate) * (1 + rate * ALPHA_PRIME**2)) ** -0.5
    np.testing.assert_allclose((a, b), (keras_a, -keras_a * ALPHA_PRIME * rate), rtol=1e-12)


@pytest.mark.parametrize("rate", [0.1, 0.5])
@pytest.mark.parametrize("mean, variance", [(0.5, 2.0), (-1.0, 0.25)])
def test_affine_restores_any_fixed_point_exactly(rate, mean, variance):
    # Exact moments of z = x*m + alpha'*(1-m), x of mean mu / variance nu,
    # m ~ Bernoulli(q): E[z] = q mu + (1-q) alpha', E[z^2] = q (nu + mu^2) + (1-q) alpha'^2.
    q = 1 - rate
    a, b = alpha_dropout_affine(rate, mean, variance)
    ez = q * mean + (1 - q) * ALPHA_PRIME
    ez2 = q * (variance + mean**2) + (1 - q) * ALPHA_PRIME**2
    np.testing.assert_allclose(a * ez + b, mean, atol=1e-12)
    np.testing.assert_allclose(a**2 * (ez2 - ez**2), variance, rtol=1e-12)


def test_each_output_is_the_affine_map_of_the_input_or_of_alpha_prime():
    x = np.random.default_rng(0).standard_normal((200, 30)).astype("float32")
    a, b = alpha_dropout_affine(0.4, 0.5, 2.0)
    y = keras.ops.convert_to_numpy(alpha_dropout(x, 0.4, seed=1, mean=0.5, variance=2.0))
    kept = np.isclose(y, a * x + b, rtol=1e-5, atol=1e-6)
    dropped = np.isclose(y, a * ALPHA_PRIME + b, rtol=1e-6)
    assert np.all(kept | dropped)
    # 6000 entries, drop fraction ~ 0.4 +/- sqrt(.24/6000) = 0.0063: 5 sd.
    assert abs(dropped.mean() - 0.4) < 5 * np.sqrt(0.24 / x.size)


def test_integer_seed_is_deterministic_and_rate_0_is_identity():
    x = np.random.default_rng(1).standard_normal((20, 10)).astype("float32")
    first = keras.ops.convert_to_numpy(alpha_dropout(x, 0.3, seed=5))
    np.testing.assert_array_equal(first, keras.ops.convert_to_numpy(alpha_dropout(x, 0.3, seed=5)))
    assert alpha_dropout(x, 0.0) is x


def test_noise_shape_none_entries_take_the_input_size():
    x = np.zeros((4, 6, 5), "float32")
    assert tuple(resolve_noise_shape(x, (None, 1, None))) == (4, 1, 5)
    assert tuple(resolve_noise_shape(x, None)) == (4, 6, 5)


def test_output_keeps_the_input_dtype():
    x = keras.ops.ones((8, 4), dtype="float16")
    assert keras.backend.standardize_dtype(alpha_dropout(x, 0.2, seed=0).dtype) == "float16"
