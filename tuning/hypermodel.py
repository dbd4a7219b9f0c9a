"""The models of a study's configurations, as a Keras Tuner hypermodel.

The search space itself is a `kreg.tuning.SearchSpace`; the hypermodel turns
one of its configurations into a compiled model. It takes the model in any of
the forms a user has:

- a zoo name ("mlp"): `kreg.models.create(name, input_shape=..., num_classes=...,
  rate=..., norm=..., order=..., seed=..., **model_kwargs)`;
- a builder function, called with the keyword arguments its signature
  declares among `rate`, `norm`, `order`, `seed`, `input_shape`,
  `num_classes` and `model_kwargs` (all of them if it takes `**kwargs`);
- a `keras.Model` (Sequential or Functional): each configuration is its
  `kreg.retrofit` variant, the norm/act/drop blocks rewritten.

Initial weights are a function of the configuration's seed alone: the
global random state is seeded with it before every build, so a builder whose
initializers have no seeds still builds the same model for the same seed,
alone or in a pack.

Compile settings: `loss`, `optimizer` and `metrics` given to the hypermodel
win; otherwise a model that arrives compiled (from the builder, or the
`keras.Model` given) keeps its own; otherwise the task's defaults and Adam.
Every run gets a fresh optimizer.
"""

import inspect

import keras
import keras_tuner

from kreg import checks
from kreg.tuning import space as space_module

TASKS = ("multiclass", "binary", "regression")
DEFAULT_LOSSES = {"multiclass": "sparse_categorical_crossentropy", "binary": "binary_crossentropy", "regression": "mean_squared_error"}
DEFAULT_METRICS = {"multiclass": ["accuracy"], "binary": ["accuracy"], "regression": []}
BUILDER_ARGUMENTS = ("rate", "norm", "order", "seed", "input_shape", "num_classes")


def zoo_builder(name):
    """A builder function for the zoo model `name` (checked against the zoo)."""
    from kreg import models

    known = models.list_models()
    if name not in known:
        raise checks.fail("model", f"a zoo model name ({', '.join(known)}), a builder function, a keras.Model or a .keras path", name)

    def build(**overrides):
        return models.create(name, **overrides)

    return build


def retrofit_builder(model):
    """A builder of `model`'s retrofit variants (see `kreg.retrofit`)."""
    from kreg.retrofitting import retrofit

    retrofit(model, norm=None, rate=0.0)  # refuses a model it cannot rewrite, before any work

    def build(rate, norm, seed, order="norm-act-drop", **ignored):
        return retrofit(model, norm=norm, order=order, rate=rate, seed=seed)

    return build


def builder_arguments(builder, model_kwargs):
    """The names `builder` is called with: those its signature declares.

    Raises:
        ValueError: a `model_kwargs` key the builder does not take, or
            `rate` or `seed` (the grid sets them) in `model_kwargs`.
    """
    for name in ("rate", "seed", "norm", "order"):
        if name in model_kwargs:
            raise checks.fail("model_kwargs", f"free of {name!r}: the study's grid sets it", model_kwargs)
    try:
        parameters = inspect.signature(builder).parameters
    except (TypeError, ValueError):  # a builtin or C callable: call it with everything
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    unknown = sorted(set(model_kwargs) - set(parameters))
    if unknown:
        raise checks.fail("model_kwargs", f"arguments the builder takes ({', '.join(parameters)})", unknown)
    return set(parameters)


def _fresh_optimizer(optimizer, learning_rate):
    """A new optimizer from a name, an instance or a config dict."""
    if isinstance(optimizer, str):
        fresh = keras.optimizers.get(optimizer)
        fresh.learning_rate = learning_rate
        return fresh
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer.__class__.from_config(optimizer.get_config())
    return keras.optimizers.deserialize(optimizer)


def _fresh_metrics(metrics):
    """Metrics with any metric object replaced by a new one of its config."""
    return [m.__class__.from_config(m.get_config()) if isinstance(m, keras.metrics.Metric) else m for m in metrics]


def check_compile_settings(loss, optimizer, metrics):
    """Refuses compile settings Keras could not use, before any work."""
    if loss is not None:
        try:
            keras.losses.get(loss)
        except (ValueError, TypeError) as e:
            raise checks.fail("loss", "a Keras loss name, a keras.losses.Loss or a function", loss) from e
    if optimizer is not None:
        if not isinstance(optimizer, (str, dict, keras.optimizers.Optimizer)):
            raise checks.fail("optimizer", "an optimizer name, a keras.optimizers.Optimizer or its config", optimizer)
        try:
            _fresh_optimizer(optimizer, 1e-3)
        except (ValueError, TypeError) as e:
            raise checks.fail("optimizer", "an optimizer name, a keras.optimizers.Optimizer or its config", optimizer) from e
    if metrics is not None and (isinstance(metrics, (str, dict)) or not hasattr(metrics, "__iter__")):
        raise checks.fail("metrics", "a list of metrics", metrics)


class RegularizationHyperModel(keras_tuner.HyperModel):
    """Dropout rate x normalization x block order, compiled and ready to fit.

    Args:
        model: a zoo model name (default "mlp"), a builder function or a
            `keras.Model` (see the module docstring).
        input_shape: shape of one example.
        num_classes: number of classes (None for regression).
        rates, norms, orders, seeds: the grid (see `kreg.tuning.SearchSpace`).
        learning_rate: the learning rate of the default Adam (and of an
            optimizer given by name).
        model_kwargs: further fixed keyword arguments of the builder.
        task: "multiclass", "binary" or "regression".
        loss, optimizer, metrics: compile settings (see the module
            docstring); None keeps the model's own or the task's default.

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
        task="multiclass",
        loss=None,
        optimizer=None,
        metrics=None,
    ):
        super().__init__(name="regularization")
        self.space = space_module.SearchSpace(rates=rates, norms=norms, orders=orders, seeds=seeds)
        self.learning_rate = checks.check_positive("learning_rate", learning_rate)
        if model_kwargs is not None and not isinstance(model_kwargs, dict):
            raise checks.fail("model_kwargs", "a dict of builder arguments", model_kwargs)
        self.model_kwargs = dict(model_kwargs or {})
        self.task = checks.check_choice("task", task, TASKS)
        check_compile_settings(loss, optimizer, metrics)
        self.loss, self.optimizer_setting, self.metrics = loss, optimizer, None if metrics is None else list(metrics)
        self.compile_config = None  # the given keras.Model's own compile settings
        if isinstance(model, str):
            self.builder = zoo_builder(model)
            self.arguments = None
        elif isinstance(model, keras.Model):
            self.builder = retrofit_builder(model)
            self.arguments = {"rate", "norm", "order", "seed"}
            if self.model_kwargs:
                raise checks.fail("model_kwargs", "empty for a keras.Model (its layers are fixed)", self.model_kwargs)
            if getattr(model, "compiled", False):
                self.compile_config = model.get_compile_config()
        elif callable(model):
            self.builder = model
            self.arguments = builder_arguments(model, self.model_kwargs)
        else:
            raise checks.fail("model", "a zoo model name, a builder function, a keras.Model or a .keras path", model)
        if isinstance(model, str):
            builder_arguments(self.builder, self.model_kwargs)  # grid keys in model_kwargs are refused
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.num_classes = num_classes

    def declare_hyperparameters(self, hp):
        self.space.declare(hp)

    def build_model(self, config):
        """The uncompiled model of a configuration, its initial weights a
        function of the configuration's seed alone."""
        kwargs = dict(self.model_kwargs, **self.space.builder_kwargs(config))
        kwargs.update(input_shape=self.input_shape, num_classes=self.num_classes)
        if self.arguments is not None:
            kwargs = {name: value for name, value in kwargs.items() if name in self.arguments}
        keras.utils.set_random_seed(config["seed"])
        return self.builder(**kwargs)

    def compile_kwargs(self, model):
        """The `compile` arguments of a built model: fresh objects each time."""
        if getattr(model, "compiled", False):
            base = keras.saving.deserialize_keras_object(model.get_compile_config())
        elif self.compile_config is not None:
            base = keras.saving.deserialize_keras_object(self.compile_config)
        else:
            base = {
                "loss": DEFAULT_LOSSES[self.task],
                "optimizer": keras.optimizers.Adam(self.learning_rate),
                "metrics": list(DEFAULT_METRICS[self.task]),
            }
        if self.loss is not None:
            base["loss"] = self.loss
        if self.optimizer_setting is not None:
            base["optimizer"] = _fresh_optimizer(self.optimizer_setting, self.learning_rate)
        if self.metrics is not None:
            base["metrics"] = _fresh_metrics(self.metrics)
        return {"loss": base.get("loss"), "optimizer": base.get("optimizer"), "metrics": base.get("metrics") or []}

    def optimizer(self, model):
        """A fresh optimizer of the study's compile settings for `model`."""
        return self.compile_kwargs(model)["optimizer"]

    def build(self, hp):
        self.declare_hyperparameters(hp)
        model = self.build_model(self.space.config_of(hp))
        model.compile(**self.compile_kwargs(model))
        return model
