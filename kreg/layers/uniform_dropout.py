"""UniformDropout: the multiplicative uniform noise "Uout" (Li et al. 2019)."""

import keras

from kreg.keras_compat import build_at_init
from kreg.layers.training_noise import TrainingNoise
from kreg.ops.uniform_noise import uniform_noise


@keras.saving.register_keras_serializable(package="kreg")
class UniformDropout(TrainingNoise):
    """Multiplies the input by `1 + u`, `u ~ U(-rate, rate)`, in training.

    "Uout" from Li et al. 2019, "Understanding the Disharmony between Dropout
    and Batch Normalization by Variance Shift": the mean is kept and, for a
    zero-mean input, the variance grows only by `1 + rate**2 / 3` (standard
    dropout: `1 / (1 - rate)`), so a following batch norm sees nearly the same
    statistics in training and at inference. The noise comes from kreg's
    keyed generator (`kreg.ops.keyed_random`), so that many runs trained side
    by side as one model draw it in one op (see `TrainingNoise`).

    Args:
        rate: float in [0, 1), the half-width beta of the uniform noise.
        seed, **kwargs, call arguments: as in `TrainingNoise`.

    Example:

    >>> layer = UniformDropout(0.2, seed=0)
    >>> y = layer(keras.ops.ones((2, 3)), training=True)  # values in [0.8, 1.2)
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed, **kwargs)
        build_at_init(self)

    def noise(self, inputs, key, branch_axis=None, *, rate):
        return uniform_noise(inputs, rate, seed=key, branch_axis=branch_axis)
