"""The models of a study's configurations, as a Keras Tuner hypermodel.

The search space itself is a `kreg.tuning.SearchSpace`; the hypermodel turns
one of its configurations into a compiled model.
"""

import keras
import keras_tuner

from kreg import checks
from kreg.tuning import space as space_module

LOSS = "sparse_categorical_crossentropy"


def zoo_builder(name):
    """A builder function for the zoo model `name` (checked against the zoo)."""
    from kreg import models

    known = models.list_models()
    if name not in known:
        raise checks.fail("model", f"a zoo model name ({', '.join(known)}) or a builder function", name)

    def build(**overrides):
        return models.create(name, **overrides)

    return build


class RegularizationHyperModel(keras_tuner.HyperModel):
    """Dropout rate x normalization x block order, compiled and ready to fit.

    Args:
        model: a zoo model name (default "mlp") or a builder function called as
            `builder(input_shape=..., num_classes=..., rate=..., norm=...,
            seed=..., order=...)` (`order` only when `norm` is not None,
            `norm` is None for no normalization) that returns an uncompiled
            `keras.Model` with softmax outputs.
        input_shape: shape of one example.
        num_classes: number of classes.
        rates, norms, orders, seeds: the grid (see `kreg.tuning.SearchSpace`).
        learning_rate: Adam's learning rate (fixed, not searched).
        model_kwargs: further fixed overrides passed to the builder.

    Attributes:
        space: the `kreg.tuning.SearchSpace`.

    Example:

    ```python
    hypermodel = RegularizationHyperModel("mlp", input_shape=(64,), num_classes=10)
    model = hypermodel.build_model(hypermodel.space.configs()[0])
    ```
    """

    def __init__(
        self,
        model="mlp",
        input_shape=None,
        num_classes=None,
        rates=space_module.DEFAULT_RATES,
        norms=space_module.DEFAULT_NORMS,
        orders=space_module.DEFAULT_ORDERS,
        seeds=space_module.DEFAULT_SEEDS,
        learning_rate=1e-3,
        model_kwargs=None,
    ):
        super().__init__(name="regularization")
        self.space = space_module.SearchSpace(rates=rates, norms=norms, orders=orders, seeds=seeds)
        if isinstance(model, str):
            self.builder = zoo_builder(model)
        elif callable(model):
            self.builder = model
        else:
            raise checks.fail("model", "a zoo model name or a builder function", model)
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.num_classes = num_classes
        self.learning_rate = checks.check_positive("learning_rate", learning_rate)
        self.model_kwargs = dict(model_kwargs or {})

    def declare_hyperparameters(self, hp):
        self.space.declare(hp)

    def build_model(self, config):
        """The uncompiled model of a configuration."""
        kwargs = dict(self.model_kwargs, **self.space.builder_kwargs(config))
        return self.builder(input_shape=self.input_shape, num_classes=self.num_classes, **kwargs)

    def optimizer(self):
        """A fresh optimizer of the study's fixed settings."""
        return keras.optimizers.Adam(self.learning_rate)

    def build(self, hp):
        self.declare_hyperparameters(hp)
        model = self.build_model(self.space.config_of(hp))
        model.compile(optimizer=self.optimizer(), loss=LOSS, metrics=["accuracy"])
        return model
