"""StandardDropout: inverted dropout drawn from kreg's keyed generator."""

import keras

from kreg.layers.training_noise import TrainingNoise
from kreg.layers.training_noise import branched_noise_shape
from kreg.layers.training_noise import check_noise_shape
from kreg.layers.training_noise import check_noise_shape_fits
from kreg.ops.dropout import dropout


@keras.saving.register_keras_serializable(package="kreg")
class StandardDropout(TrainingNoise):
    """Sets units to 0 with probability `rate` in training, scales the rest by `1 / (1 - rate)`.

    The math of `keras.layers.Dropout` (Srivastava et al. 2014), with the
    mask drawn from kreg's keyed generator (`kreg.ops.keyed_random`), so
    that many runs trained side by side as one model draw their masks in one
    op (see `TrainingNoise`). Unlike `keras.layers.Dropout` it refuses
    `rate=1`.

    Args:
        rate: float in [0, 1), the probability of dropping a unit.
        noise_shape: tuple of the input's rank giving the shape of the drop
            mask; a None entry takes the input's size on that axis, a 1
            shares the mask along that axis. E.g. `(None, 1, C)` on
            `(batch, timesteps, C)` drops the same channels at every timestep.
            None means one mask entry per input element.
        seed: int >= 0 or None, the seed of the random mask.
        **kwargs, call arguments: as in `TrainingNoise`.

    Example:

    >>> layer = StandardDropout(0.5, seed=0)
    >>> y = layer(keras.ops.ones((2, 4)), training=True)   # 0 or 2 everywhere
    >>> layer(keras.ops.ones((2, 4))).shape                # inference: identity
    (2, 4)
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(rate, seed, **kwargs)
        self.noise_shape = check_noise_shape(noise_shape)
        self._scale = 1.0 / (1.0 - self.rate)

    def build(self, input_shape):
        check_noise_shape_fits(self.noise_shape, input_shape)

    def branch_values(self):
        """`{"rate": rate, "scale": 1 / (1 - rate)}`."""
        return {"rate": self.rate, "scale": self._scale}

    def noise(self, inputs, key, branch_axis=None, *, rate, scale):
        noise_shape = branched_noise_shape(self.noise_shape, branch_axis)
        return dropout(inputs, rate, noise_shape, seed=key, scale=scale, branch_axis=branch_axis)

    def get_config(self):
        return {**super().get_config(), "noise_shape": self.noise_shape}
