"""UniformDropout: the multiplicative uniform noise "Uout" (Li et al. 2019)."""

import keras
from keras import layers

from kreg.checks import check_rate
from kreg.checks import check_seed
from kreg.keras_compat import build_at_init
from kreg.ops.uniform_noise import uniform_noise


@keras.saving.register_keras_serializable(package="kreg")
class UniformDropout(layers.Layer):
    """Multiplies the input by `1 + u`, `u ~ U(-rate, rate)`, in training.

    "Uout" from Li et al. 2019, "Understanding the Disharmony between Dropout
    and Batch Normalization by Variance Shift": the mean is kept and, for a
    zero-mean input, the variance grows only by `1 + rate**2 / 3` (standard
    dropout: `1 / (1 - rate)`), so a following batch norm sees nearly the same
    statistics in training and at inference.

    Args:
        rate: float in [0, 1), the half-width beta of the uniform noise.
        seed: int >= 0 or None, the seed of the noise.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: input tensor of any rank.
        training: Python bool; True adds the noise, False (inference)
            returns the input unchanged.

    Example:

    >>> layer = UniformDropout(0.2, seed=0)
    >>> y = layer(keras.ops.ones((2, 3)), training=True)  # values in [0.8, 1.2)
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.seed = check_seed("seed", seed)
        if self.rate > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        build_at_init(self)

    def call(self, inputs, training=False):
        if training and self.rate > 0:
            return uniform_noise(inputs, self.rate, seed=self.seed_generator)
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
