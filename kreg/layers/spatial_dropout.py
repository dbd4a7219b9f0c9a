"""SpatialDropout: dropout of whole channels (feature maps), from kreg's keyed generator."""

import keras

from kreg.layers.training_noise import TrainingNoise
from kreg.layers.training_noise import branched_noise_shape
from kreg.ops.dropout import dropout

SPATIAL_RANKS = (3, 4, 5)


@keras.saving.register_keras_serializable(package="kreg")
class SpatialDropout(TrainingNoise):
    """Drops whole channels of the last axis in training, scales the rest by `1 / (1 - rate)`.

    The math of `keras.layers.SpatialDropout1D/2D/3D` (Tompson et al. 2015)
    with channels last: the mask has shape `(batch, 1, ..., 1, channels)`,
    so a channel is dropped at every position of an example or at none.
    Adjacent positions of a feature map are strongly correlated, and
    element-wise dropout would hardly regularize them. The mask comes from
    kreg's keyed generator (`kreg.ops.keyed_random`), so that many runs
    trained side by side as one model draw it in one op (see `TrainingNoise`).

    Args:
        rate: float in [0, 1), the probability of dropping a channel.
        seed, **kwargs: as in `TrainingNoise`.

    Call arguments:
        inputs: a tensor of rank 3, 4 or 5, `(batch, ..., channels)`
            (sequences, images, volumes).
        training: Python bool; True drops channels, False (inference)
            returns the input unchanged.

    Example:

    >>> layer = SpatialDropout(0.5, seed=0)
    >>> y = layer(keras.ops.ones((2, 5, 5, 3)), training=True)  # y[i, :, :, c] all 0 or all 2
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed, **kwargs)
        self._scale = 1.0 / (1.0 - self.rate)

    def build(self, input_shape):
        if len(input_shape) not in SPATIAL_RANKS:
            raise ValueError(
                "SpatialDropout needs inputs of rank 3, 4 or 5 (batch, ..., channels), "
                f"got rank {len(input_shape)} input shape {tuple(input_shape)}"
            )

    def branch_values(self):
        """`{"rate": rate, "scale": 1 / (1 - rate)}`."""
        return {"rate": self.rate, "scale": self._scale}

    def noise(self, inputs, key, branch_axis=None, *, rate, scale):
        rank = len(inputs.shape) - (branch_axis is not None)
        noise_shape = branched_noise_shape((None,) + (1,) * (rank - 2) + (None,), branch_axis)
        return dropout(inputs, rate, noise_shape, seed=key, scale=scale, branch_axis=branch_axis)
