import keras
import numpy as np
import pytest
from layer_contract import TrainingNoiseContract
from layer_contract import train_pass

from kreg.layers import GaussianDropout


class TestGaussianDropoutContract(TrainingNoiseContract):
    layer_class = GaussianDropout


# y = x * (1 + s n), n ~ N(0, 1), s**2 = rate / (1 - rate): on x = 1 the
# multiplier's sample mean and variance over N = 1e6 values have standard
# errors s / sqrt(N) and s**2 sqrt(2 / N) (normal multiplier); 5 of them.
@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_multiplier_has_mean_1_and_variance_rate_over_keep(rate):
    y = train_pass(GaussianDropout(rate, seed=2), np.ones((1000, 1000), "float32")).astype("float64")
    variance, n = rate / (1 - rate), y.size
    assert abs(y.mean() - 1) < 5 * np.sqrt(variance / n)
    assert abs(y.var() - variance) < 5 * variance * np.sqrt(2 / n)


def test_same_law_as_keras_gaussian_dropout():
    # Not the same draws (keras draws from keras.random), the same variance:
    # the two sample variances agree within 5 standard errors of their difference.
    x = np.ones((500, 400), "float32")
    ours = train_pass(GaussianDropout(0.3, seed=0), x).var()
    theirs = train_pass(keras.layers.GaussianDropout(0.3, seed=0), x).var()
    variance = 0.3 / 0.7
    assert abs(ours - theirs) < 5 * variance * np.sqrt(2 * 2 / x.size)


def test_no_unit_is_zeroed_and_the_sign_is_random():
    y = train_pass(GaussianDropout(0.2, seed=1), np.ones((100, 100), "float32"))
    assert np.all(y != 0)
    # P(1 + 0.5 n < 0) = P(n < -2) = 0.023: some multipliers are negative, as in Keras
    assert 0 < (y < 0).mean() < 0.05


def test_is_built_at_construction():
    assert GaussianDropout(0.2).built
