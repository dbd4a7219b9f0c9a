"""TrainingNoise: the base of kreg's dropout layers (keyed noise in training only)."""

import keras
from keras import layers

from kreg.checks import check_positive_int
from kreg.checks import check_rate
from kreg.checks import check_seed


def check_noise_shape(noise_shape):
    """`noise_shape` as a tuple of ints and Nones (None stays None), else a ValueError."""
    if noise_shape is None:
        return None
    if isinstance(noise_shape, str):
        raise ValueError(f"noise_shape must be a tuple of ints or None, got {noise_shape!r}")
    noise_shape = tuple(noise_shape)
    for dim in noise_shape:
        if dim is not None:
            check_positive_int(f"each entry of noise_shape={noise_shape}", dim)
    return noise_shape


def check_noise_shape_fits(noise_shape, input_shape):
    """Raises a ValueError unless `noise_shape` broadcasts against `input_shape`."""
    if noise_shape is None:
        return
    broadcastable = len(noise_shape) == len(input_shape) and all(
        dim is None or dim == 1 or size is None or dim == size
        for dim, size in zip(noise_shape, input_shape)
    )
    if not broadcastable:
        raise ValueError(
            f"noise_shape must have the input's rank and entries None, 1 or "
            f"the input's size, got noise_shape={noise_shape} for input "
            f"shape {tuple(input_shape)}"
        )


def branched_noise_shape(noise_shape, branch_axis):
    """A noise shape of the unbranched input, with None (all K branches) inserted at `branch_axis`.

    Example:

    >>> branched_noise_shape((None, 1, 8), 1)
    (None, None, 1, 8)
    """
    if noise_shape is None or branch_axis is None:
        return noise_shape
    axis = branch_axis % (len(noise_shape) + 1)
    return noise_shape[:axis] + (None,) + noise_shape[axis:]


class TrainingNoise(layers.Layer):
    """Perturbs its input with keyed noise in training, passes it at inference.

    The base of kreg's dropout layers: it checks `rate` and `seed`, owns the
    `seed_generator` (a `keras.random.SeedGenerator`, created when
    `rate > 0`, as in `keras.layers.Dropout`), passes the Keras mask through,
    and in training with `rate > 0` returns
    `noise(inputs, seed_generator.next(), **branch_values())`.

    The noise is drawn from `kreg.ops.keyed_random`: a pure function of the
    key (the seed generator's state `[seed, counter]`) and of each element's
    position. So K runs of one layer kind (a pack, `(B, K, ...)`) draw their
    noise in one call, `noise(inputs, keys, branch_axis=1, **values)` with
    `(K, 2)` keys and per-branch values, and branch k's slice equals exactly
    what run k's layer computes alone.

    A subclass implements `noise` and, when it derives values from the rate,
    `branch_values`; it adds its own arguments to the config.

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

    def branch_values(self):
        """The Python floats of this layer's per-run parameters, by name.

        The rate and what the layer derives from it (computed once, in
        `__init__`: under `torch.compile` float arithmetic on attributes
        fails to trace). Valid for rate 0 too: `noise` with these values is
        then the identity.

        Returns:
            A dict `{name: float}`, e.g. `{"rate": 0.3}`: the keyword
            arguments of `noise`.
        """
        return {"rate": self.rate}

    def noise(self, inputs, key, branch_axis=None, **values):
        """The training output: `inputs` with the noise of `key`.

        Args:
            inputs: the input tensor; with `branch_axis`, K branches' inputs
                stacked on that axis (a pack: `(B, K, ...)`, `branch_axis=1`).
            key: a seed state `[seed, counter]`, int, shape `(2,)`; `(K, 2)`
                with `branch_axis`.
            branch_axis: None, or the axis of `inputs` holding the branches.
            **values: `branch_values()`; with `branch_axis`, each value a
                float32 tensor broadcastable against `inputs` holding branch
                k's value at index k of `branch_axis` (e.g. `(1, K, 1, ..., 1)`).
                Settings that are not per run (e.g. `noise_shape`, given for
                the unbranched input) come from the layer.

        Returns:
            A tensor of the shape and dtype of `inputs`.
        """
        raise NotImplementedError("a TrainingNoise subclass defines noise(inputs, key, ...)")

    def call(self, inputs, training=False):
        if training and self.rate > 0:
            return self.noise(inputs, self.seed_generator.next(), **self.branch_values())
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
