"""AlphaDropout: dropout that keeps SELU's self-normalizing fixed point."""

import keras

from kreg.checks import check_finite
from kreg.checks import check_positive
from kreg.checks import check_positive_int
from kreg.layers.training_noise import TrainingNoise
from kreg.ops.alpha_dropout import alpha_dropout
from kreg.ops.alpha_dropout import alpha_dropout_affine


def _check_noise_shape(noise_shape):
    if noise_shape is None:
        return None
    if isinstance(noise_shape, str):
        raise ValueError(f"noise_shape must be a tuple of ints or None, got {noise_shape!r}")
    noise_shape = tuple(noise_shape)
    for dim in noise_shape:
        if dim is not None:
            check_positive_int(f"each entry of noise_shape={noise_shape}", dim)
    return noise_shape


@keras.saving.register_keras_serializable(package="kreg")
class AlphaDropout(TrainingNoise):
    """Applies alpha dropout (Klambauer et al. 2017) to the input.

    Dropped units are set to SELU's negative saturation value
    `alpha' = -lambda * alpha` and then `a * x + b` restores the fixed point:
    an input of mean `mean` and variance `variance` comes out with the same
    mean and variance. Use it with `selu` activations and `lecun_normal`
    initialization. Unlike `keras.layers.AlphaDropout` it refuses `rate=1`
    and supports a fixed point other than (0, 1).

    Args:
        rate: float in [0, 1), the probability of dropping a unit.
        noise_shape: tuple of the input's rank giving the shape of the drop
            mask; a None entry takes the input's size on that axis, a 1
            shares the mask along that axis. E.g. `(None, 1, C)` on
            `(batch, timesteps, C)` drops the same channels at every timestep.
            None means one mask entry per input element.
        seed: int >= 0 or None, the seed of the random mask.
        mean: the fixed-point mean the layer preserves (0 for SELU).
        variance: the fixed-point variance (> 0) the layer preserves (1 for SELU).
        **kwargs, call arguments: as in `TrainingNoise`.

    Example:

    >>> layer = AlphaDropout(0.1, seed=0)
    >>> x = keras.random.normal((4, 3))
    >>> y = layer(x, training=True)   # mean 0 / variance 1 kept
    >>> layer(x).shape                # inference: identity
    (4, 3)
    """

    def __init__(self, rate, noise_shape=None, seed=None, mean=0.0, variance=1.0, **kwargs):
        super().__init__(rate, seed, **kwargs)
        self.noise_shape = _check_noise_shape(noise_shape)
        self.mean = check_finite("mean", mean)
        self.variance = check_positive("variance", variance)
        # computed once, outside any traced call (see `alpha_dropout`'s `affine`)
        self._affine = alpha_dropout_affine(self.rate, self.mean, self.variance) if self.rate > 0 else None

    def build(self, input_shape):
        if self.noise_shape is not None:
            broadcastable = len(self.noise_shape) == len(input_shape) and all(
                dim is None or dim == 1 or size is None or dim == size
                for dim, size in zip(self.noise_shape, input_shape)
            )
            if not broadcastable:
                raise ValueError(
                    f"noise_shape must have the input's rank and entries None, 1 or "
                    f"the input's size, got noise_shape={self.noise_shape} for input "
                    f"shape {tuple(input_shape)}"
                )

    def noise(self, inputs):
        return alpha_dropout(
            inputs,
            self.rate,
            noise_shape=self.noise_shape,
            seed=self.seed_generator,
            mean=self.mean,
            variance=self.variance,
            affine=self._affine,
        )

    def get_config(self):
        config = {
            "noise_shape": self.noise_shape,
            "mean": self.mean,
            "variance": self.variance,
        }
        return {**super().get_config(), **config}
