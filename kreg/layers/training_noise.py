"""TrainingNoise: the base of kreg's dropout layers (seeded noise in training only)."""

import keras
from keras import layers

from kreg.checks import check_rate
from kreg.checks import check_seed


class TrainingNoise(layers.Layer):
    """Perturbs its input with seeded randomness in training, passes it at inference.

    The base of `AlphaDropout` and `UniformDropout`: it checks `rate` and
    `seed`, owns the `seed_generator` (when `rate > 0`), passes the Keras
    mask through, and calls `noise(inputs)` only in training with `rate > 0`.
    A subclass implements `noise` and adds its own arguments to the config.

    Args:
        rate: float in [0, 1), the strength of the noise.
        seed: int >= 0 or None, the seed of the noise.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: input tensor of any rank.
        training: Python bool; True applies the noise, False (inference)
            returns the input unchanged.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.seed = check_seed("seed", seed)
        if self.rate > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def noise(self, inputs):
        """The training output for `inputs` (called only when `rate > 0`)."""
        raise NotImplementedError("a TrainingNoise subclass defines noise(inputs)")

    def call(self, inputs, training=False):
        if training and self.rate > 0:
            return self.noise(inputs)
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
