"""AlphaDropout: dropout that keeps SELU's self-normalizing fixed point."""

import keras

from kreg.checks import check_finite
from kreg.checks import check_positive
from kreg.layers.training_noise import TrainingNoise
from kreg.layers.training_noise import branched_noise_shape
from kreg.layers.training_noise import check_noise_shape
from kreg.layers.training_noise import check_noise_shape_fits
from kreg.ops.alpha_dropout import ALPHA_PRIME
from kreg.ops.alpha_dropout import alpha_dropout
from kreg.ops.alpha_dropout import alpha_dropout_affine


@keras.saving.register_keras_serializable(package="kreg")
class AlphaDropout(TrainingNoise):
    """Applies alpha dropout (Klambauer et al. 2017) to the input.

    Dropped units are set to SELU's negative saturation value
    `alpha' = -lambda * alpha` and then `a * x + b` restores the fixed point:
    an input of mean `mean` and variance `variance` comes out with the same
    mean and variance. Use it with `selu` activations and `lecun_normal`
    initialization. Unlike `keras.layers.AlphaDropout` it refuses `rate=1`
    and supports a fixed point other than (0, 1). The mask comes from kreg's
    keyed generator (`kreg.ops.keyed_random`), so that many runs trained side
    by side as one model draw it in one op (see `TrainingNoise`).

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
        self.noise_shape = check_noise_shape(noise_shape)
        self.mean = check_finite("mean", mean)
        self.variance = check_positive("variance", variance)
        # computed once, outside any traced call (see `alpha_dropout`'s `affine`);
        # rate 0 gives (1, 0): the identity.
        self._affine = alpha_dropout_affine(self.rate, self.mean, self.variance)
        self._dropped = self._affine[0] * ALPHA_PRIME + self._affine[1]

    def build(self, input_shape):
        check_noise_shape_fits(self.noise_shape, input_shape)

    def branch_values(self):
        """`{"rate", "a", "b", "dropped"}`: `(a, b)` the affine correction, `a * alpha' + b`."""
        a, b = self._affine
        return {"rate": self.rate, "a": a, "b": b, "dropped": self._dropped}

    def noise(self, inputs, key, branch_axis=None, *, rate, a, b, dropped):
        return alpha_dropout(
            inputs,
            rate,
            noise_shape=branched_noise_shape(self.noise_shape, branch_axis),
            seed=key,
            mean=self.mean,
            variance=self.variance,
            affine=(a, b),
            branch_axis=branch_axis,
            dropped=dropped,
        )

    def get_config(self):
        config = {
            "noise_shape": self.noise_shape,
            "mean": self.mean,
            "variance": self.variance,
        }
        return {**super().get_config(), **config}
