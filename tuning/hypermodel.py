"""The search space of a study as a Keras Tuner hypermodel.

Dimensions, all `hp.Choice` so that every value is exact and a grid search
enumerates them:

- `norm`: "none", "batch" (and optionally "layer", "group");
- `order`: the block order, active only when `norm` is not "none" (it would
  change nothing without a normalization layer, so it does not multiply runs);
- `rate`: the dropout rate, rounded values (`hp.Float(step=0.1)` would give
  0.30000000000000004);
- `seed`: an explicit dimension, so that every seed is a run of its own with
  its own row (Keras Tuner's `executions_per_trial` keeps only the mean), and
  the same seeds are run with and without normalization (paired comparisons).
"""

import keras
import keras_tuner

from kreg.tuning import checks

DEFAULT_RATES = tuple(round(0.1 * i, 1) for i in range(9))  # 0.0 .. 0.8
DEFAULT_NORMS = (None, "batch")
DEFAULT_ORDERS = ("norm-act-drop", "act-norm-drop")
LOSS = "sparse_categorical_crossentropy"


def norm_value(norm):
    """The hyperparameter value of a norm setting: None becomes "none"."""
    return "none" if norm is None else norm


def zoo_builder(name):
    """A builder function for the zoo model `name` (checked against the zoo)."""
    from kreg import models

    known = models.list_models()
    if name not in known:
        raise ValueError(f"model must be a zoo model name ({', '.join(known)}) or a builder function, got {name!r}")

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
        rates: dropout rates to search, each in [0, 1).
        norms: normalizations to search: None, "batch", "layer", "group".
        orders: block orders searched when a normalization is used, e.g.
            "norm-act-drop".
        seeds: number of seeds (seeds 0..N-1) or a sequence of int seeds.
        learning_rate: Adam's learning rate (fixed, not searched).
        model_kwargs: further fixed overrides passed to the builder.

    Example:

    ```python
    hypermodel = RegularizationHyperModel("mlp", input_shape=(64,), num_classes=10)
    model = hypermodel.build(keras_tuner.HyperParameters())
    ```
    """

    def __init__(
        self,
        model="mlp",
        input_shape=None,
        num_classes=None,
        rates=DEFAULT_RATES,
        norms=DEFAULT_NORMS,
        orders=DEFAULT_ORDERS,
        seeds=5,
        learning_rate=1e-3,
        model_kwargs=None,
    ):
        super().__init__(name="regularization")
        self.rates = checks.check_rates(rates)
        self.norms = checks.check_norms(norms)
        self.orders = checks.check_orders(orders)
        self.seeds = checks.check_seeds(seeds)
        self.builder = zoo_builder(model) if isinstance(model, str) else checks.check_builder(model)
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.num_classes = num_classes
        self.learning_rate = learning_rate
        self.model_kwargs = dict(model_kwargs or {})

    def grid_size(self):
        """Number of runs of a full grid."""
        with_norm = sum(1 for n in self.norms if n != "none")
        without = 1 if "none" in self.norms else 0
        return (without + with_norm * len(self.orders)) * len(self.rates) * len(self.seeds)

    def declare_hyperparameters(self, hp):
        norm = hp.Choice("norm", [norm_value(n) for n in self.norms])
        others = [n for n in self.norms if n != "none"]
        if others:
            with hp.conditional_scope("norm", others):
                hp.Choice("order", list(self.orders))
        hp.Choice("rate", list(self.rates))
        hp.Choice("seed", list(self.seeds))
        return norm

    def overrides(self, values):
        """Builder keyword arguments for a dict of hyperparameter values."""
        norm = values["norm"]
        kwargs = dict(self.model_kwargs, rate=values["rate"], seed=values["seed"])
        kwargs["norm"] = None if norm == "none" else norm
        if norm != "none":
            kwargs["order"] = values["order"]
        return kwargs

    def build_model(self, values):
        """The uncompiled model of a configuration (a dict of hyperparameter values)."""
        return self.builder(input_shape=self.input_shape, num_classes=self.num_classes, **self.overrides(values))

    def optimizer(self):
        """A fresh optimizer of the study's fixed settings."""
        return keras.optimizers.Adam(self.learning_rate)

    def build(self, hp):
        self.declare_hyperparameters(hp)
        model = self.build_model(hp.values)
        model.compile(optimizer=self.optimizer(), loss=LOSS, metrics=["accuracy"])
        return model
