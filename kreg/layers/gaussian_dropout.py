"""GaussianDropout: multiplicative Gaussian noise of mean 1, from kreg's keyed generator."""

import keras

from kreg.keras_compat import build_at_init
from kreg.layers.training_noise import TrainingNoise
from kreg.ops.gaussian_dropout import gaussian_dropout
from kreg.ops.gaussian_dropout import gaussian_dropout_stddev


@keras.saving.register_keras_serializable(package="kreg")
class GaussianDropout(TrainingNoise):
    """Multiplies the input by `1 + sqrt(rate / (1 - rate)) * n`, `n ~ N(0, 1)`, in training.

    The math of `keras.layers.GaussianDropout` (Srivastava et al. 2014): the
    multiplier has mean 1 and the variance of standard dropout's, `rate /
    (1 - rate)`, without zeroing any unit. The noise comes from kreg's keyed
    generator (`kreg.ops.keyed_random`), so that many runs trained side by
    side as one model draw it in one op (see `TrainingNoise`).

    Args:
        rate: float in [0, 1), the drop probability of the equivalent
            standard dropout.
        seed, **kwargs, call arguments: as in `TrainingNoise`.

    Example:

    >>> layer = GaussianDropout(0.2, seed=0)
    >>> y = layer(keras.ops.ones((1000, 4)), training=True)   # mean ~1, variance ~0.25
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed, **kwargs)
        self._stddev = gaussian_dropout_stddev(self.rate)
        build_at_init(self)

    def branch_values(self):
        """`{"rate": rate, "stddev": sqrt(rate / (1 - rate))}`."""
        return {"rate": self.rate, "stddev": self._stddev}

    def noise(self, inputs, key, branch_axis=None, *, rate, stddev):
        return gaussian_dropout(inputs, rate, seed=key, stddev=stddev, branch_axis=branch_axis)
