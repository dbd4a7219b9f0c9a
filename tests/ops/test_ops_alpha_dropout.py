import re

import keras
import numpy as np
import pytest
from branching import KEYS
from branching import assert_branches_equal_runs_alone
from branching import per_branch

from kreg.ops.alpha_dropout import ALPHA_PRIME
from kreg.ops.alpha_dropout import SELU_ALPHA
from kreg.ops.alpha_dropout import SELU_LAMBDA
from kreg.ops.alpha_dropout import alpha_dropout
from kreg.ops.alpha_dropout import alpha_dropout_affine
from kreg.ops.keyed_random import keyed_uniform


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


def test_dropped_units_are_those_of_the_keyed_uniform_below_rate():
    x = np.random.default_rng(2).standard_normal((40, 30)).astype("float32")
    a, b = alpha_dropout_affine(0.3)
    y = keras.ops.convert_to_numpy(alpha_dropout(x, 0.3, seed=[9, 4]))
    dropped = keras.ops.convert_to_numpy(keyed_uniform([9, 4], x.shape)) < np.float32(0.3)
    np.testing.assert_allclose(y[dropped], a * ALPHA_PRIME + b, rtol=1e-6)
    np.testing.assert_allclose(y[~dropped], a * x[~dropped] + b, rtol=1e-5, atol=1e-6)


def test_affine_of_rate_0_is_the_identity():
    assert alpha_dropout_affine(0.0) == (1.0, 0.0)
    assert alpha_dropout_affine(0.0, 0.5, 2.0) == (1.0, 0.0)


def test_branched_with_per_branch_rates_and_affines_equals_each_run_alone():
    # a rate-0 branch, with its affine (1, 0), next to others is the identity
    x = np.random.default_rng(3).standard_normal((16, 3, 4, 5)).astype("float32")
    rates = [0.1, 0.0, 0.4]
    affines = [alpha_dropout_affine(r, 0.5, 2.0) for r in rates]
    a, b = (per_branch([affine[i] for affine in affines], 4) for i in (0, 1))
    dropped = per_branch([a * ALPHA_PRIME + b for a, b in affines], 4)
    y = keras.ops.convert_to_numpy(alpha_dropout(
        x, per_branch(rates, 4), (None, None, 1, None), seed=KEYS, mean=0.5, variance=2.0, affine=(a, b),
        branch_axis=1, dropped=dropped,
    ))

    def alone(k, xk):
        return alpha_dropout(xk, rates[k], (None, 1, None), seed=KEYS[k], mean=0.5, variance=2.0) if rates[k] else xk

    assert_branches_equal_runs_alone(y, x, alone)
    np.testing.assert_array_equal(y[:, 1], x[:, 1])


def test_per_branch_rates_need_the_precomputed_affine_and_dropped_value():
    x, rates = np.ones((2, 3), "float32"), per_branch([0.1, 0.2, 0.3], 2)
    with pytest.raises(ValueError, match=re.escape("affine must be given when rate is a tensor (per-branch rates), got None")):
        alpha_dropout(x, rates, seed=KEYS, branch_axis=1)
    affine = (per_branch([1.0, 1.0, 1.0], 2), per_branch([0.0, 0.0, 0.0], 2))
    with pytest.raises(ValueError, match=re.escape("dropped must be given when affine holds tensors (per-branch values), got None")):
        alpha_dropout(x, rates, seed=KEYS, affine=affine, branch_axis=1)


def test_output_keeps_the_input_dtype():
    x = keras.ops.ones((8, 4), dtype="float16")
    assert keras.backend.standardize_dtype(alpha_dropout(x, 0.2, seed=0).dtype) == "float16"
