import numpy as np
import pytest
from layer_contract import TrainingNoiseContract
from layer_contract import train_pass

from kreg.layers import UniformDropout


class TestUniformDropoutContract(TrainingNoiseContract):
    layer_class = UniformDropout


# y = x + x*u with u ~ U(-beta, beta) independent of x, so E[y] = E[x] and
# Var[y] = Var[x] + E[x^2] * beta^2 / 3. For x ~ N(m, 1): E[x^2] = 1 + m^2,
# hence Var[y] = 1 + (1 + m^2) * beta^2 / 3 (gain 1 + beta^2/3 for m = 0).
# With N = 1e6 samples the standard errors of the sample mean and variance,
# sqrt(Var[y] / N) and sqrt(Var[(y - mean)^2] / N), are about 1e-3 and 2e-3;
# they are estimated from the sample and the tolerance is 6 of them. The
# variance gains tested (0.013 .. 0.17) are 6..80 standard errors away from 1,
# and standard dropout at the same rate would give 1 / (1 - beta) >= 1.25.
@pytest.mark.parametrize("beta, input_mean", [(0.2, 0.0), (0.5, 0.0), (0.5, 1.0)])
def test_keeps_mean_and_scales_variance_by_the_uout_gain(beta, input_mean):
    x = (input_mean + np.random.default_rng(0).standard_normal((1000, 1000))).astype("float64")
    y = train_pass(UniformDropout(beta, seed=4), x.astype("float32")).astype("float64")
    n = y.size
    expected_var = 1 + (1 + input_mean**2) * beta**2 / 3
    se_mean = np.sqrt(y.var() / n)
    se_var = np.sqrt(((y - y.mean()) ** 2).var() / n)
    assert abs(y.mean() - input_mean) < 6 * se_mean
    assert abs(y.var() - expected_var) < 6 * se_var


def test_noise_is_bounded_by_rate_and_fills_its_range():
    x = np.random.default_rng(1).uniform(0.5, 2.0, (200, 50)).astype("float32")
    u = train_pass(UniformDropout(0.25, seed=2), x) / x - 1
    assert np.all(np.abs(u) <= 0.25 + 1e-6)
    # 1e4 uniform draws: the extremes are within 1e-3 of the bounds
    # with probability 1 - 2 * (1 - 0.002)**1e4 ~ 1 - 4e-9.
    assert u.min() < -0.249 and u.max() > 0.249


def test_is_built_at_construction():
    layer = UniformDropout(0.2)
    assert layer.built
