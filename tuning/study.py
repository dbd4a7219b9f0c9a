"""`Study`: a resumable, distributable Keras Tuner search of dropout rate x
normalization x block order, one recorded row per run.

`run()` claims the directory, picks an executor, executes, and returns the
results. Executors share one protocol, `run(todo, record)`: `todo` holds the
configurations not recorded yet, and every run goes through `record(config,
outcome, worker)`, the study's one record path (ledger row, then progress).

- `kreg.tuning.packing.PackedExecutor`: many runs as one model (local grid);
- `kreg.tuning.trials.TrialExecutor`: one Keras Tuner trial per run;
- `kreg.tuning.distributed.ChiefExecutor` / `WorkerExecutor`: Keras Tuner's
  chief and workers (a worker trains packs of runs, or single runs).
"""

import functools
import hashlib
import json
import os

from kreg import checks
from kreg import keras_compat
from kreg.tuning import checkpoints
from kreg.tuning import directory as directory_module
from kreg.tuning import distributed
from kreg.tuning import hypermodel as hypermodel_module
from kreg.tuning import ledger
from kreg.tuning import oracles
from kreg.tuning import packing
from kreg.tuning import progress as progress_module
from kreg.tuning import recommendation
from kreg.tuning import schema
from kreg.tuning import space as space_module
from kreg.tuning import training
from kreg.tuning import trials

# The default study (`kreg study`), sized to finish in about a minute on 2 CPU
# cores (packed): 7 rates 0..0.6 (enough points for the fitted optimum) x
# (no norm + batch norm x 2 orders) x 5 seeds = 105 runs of 20 epochs. At 20
# epochs the digits mlp starts to overfit, so dropout can matter (at 10 epochs
# rate 0 wins everywhere: undertrained).
DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 32
EXECUTORS = ("auto", "packed", "sequential")


def _resolve_model(model):
    """A `.keras` path becomes its model (loaded with safe_mode); anything
    else is returned as it is."""
    if isinstance(model, os.PathLike) or (isinstance(model, str) and model.endswith(".keras")):
        import keras

        path = os.fspath(model)
        if not os.path.isfile(path):
            raise checks.fail("model", "a zoo model name, a builder function, a keras.Model or an existing .keras file", path)
        try:
            return keras.saving.load_model(path, safe_mode=True)
        except Exception as e:  # Keras raises many kinds for a bad file
            raise ValueError(f"model {path!r} is not a loadable .keras file: {type(e).__name__}: {e}") from e
    return model


def _output_width(model):
    """The last axis of a zoo or keras.Model output (None for a builder)."""
    import keras

    if isinstance(model, keras.Model) and getattr(model, "outputs", None):
        return model.outputs[0].shape[-1]
    return None


def _with_target_columns(data):
    """Targets of shape (N,) as (N, 1), the shape of a one-unit output."""
    import dataclasses

    reshaped = {name: getattr(data, name).reshape(-1, 1) for name in ("y_train", "y_val", "y_test") if getattr(data, name).ndim == 1}
    return dataclasses.replace(data, **reshaped) if reshaped else data


def _digest(parts):
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()[:16]


def _model_identity(name, model):
    """The model as study.json names it."""
    import keras

    if isinstance(name, str) and not name.endswith(".keras"):
        return name
    if isinstance(name, (str, os.PathLike)):
        with open(os.fspath(name), "rb") as f:
            return f"{os.path.abspath(os.fspath(name))} (sha256 {_digest([f.read()])})"
    if isinstance(model, keras.Model):
        with keras_compat.tensorflow_unless_imported():
            config = json.dumps(model.get_config(), sort_keys=True, default=str).encode()
        return f"keras.Model {model.name!r} (config sha256 {_digest([config])})"
    return f"{getattr(model, '__module__', '?')}.{getattr(model, '__qualname__', type(model).__name__)}"


def _dataset_identity(dataset):
    """The dataset as study.json names it."""
    import numpy as np

    if isinstance(dataset, str):
        return dataset
    if isinstance(dataset, tuple):
        arrays = [np.ascontiguousarray(np.asarray(a)) for pair in ([dataset] if not isinstance(dataset[0], tuple) else dataset) for a in pair]
        return f"arrays (sha256 {_digest([a.tobytes() for a in arrays])})"
    return getattr(dataset, "name", "custom")


def _serialized(value):
    """A JSON-ready form of a compile setting."""
    import keras

    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_serialized(v) for v in value]
    if isinstance(value, dict):
        return value
    return keras.saving.serialize_keras_object(value)


def _takes_images(model):
    """True for a zoo model registered as taking images (height, width, channels)."""
    if not isinstance(model, str):
        return False
    from kreg import models
    from kreg.models import registry

    return model in models.list_models() and registry.registration(model).input == "image"


class Study:
    """A search of dropout rate x normalization x block order, one row per run.

    Every seed is a run of its own (seeds are a search dimension), the same
    seeds run with and without normalization (paired comparisons), and each
    run records final-epoch and best-epoch validation metrics, final training
    accuracy, test metrics and wall time in `directory/runs/`.

    Resuming: `run()` on a directory holding the same study continues it: the
    search is replayed and recorded runs are answered from their rows, so a
    study killed at any moment (SIGKILL included) and run again ends with
    every configuration exactly once and trains no recorded run again. A
    directory holding a different study is refused, never overwritten.

    Distributed: run the same study with Keras Tuner's environment variables
    (see `kreg.tuning.distributed`): the chief serves the search and records
    the rows, workers train. Where the study packs, the chief hands out packs
    of runs (at most `max_pack`, and `distributed.MAX_PACK`, runs each) and
    each worker trains its pack as one model; otherwise one run per trial.

    Executors: "sequential" trains one Keras Tuner trial per run (in
    distributed mode too). "packed" trains many runs (any configurations and
    seeds) as branches of one compiled model (`kreg.tuning.packing`): the
    same rows, several times faster. Packing needs the grid tuner and a
    packable builder (one input, one output, no regularization losses);
    otherwise the study says so once and trains run by run. "auto" (the
    default) packs where it can. A study stopped during a pack keeps the
    rows of every finished pack and trains the unfinished pack again. The
    executor does not identify a study: one started with an executor may be
    resumed with another.

    Attributes:
        space: the study's `kreg.tuning.SearchSpace`.

    Args:
        model: a zoo model name (default "mlp") or a builder function (see
            `RegularizationHyperModel`).
        dataset: a `kreg.datasets.load` name (default "digits") or a
            `kreg.datasets.Dataset`.
        directory: the study directory.
        tuner: "grid" (every configuration), "random", "bayesian" or
            "hyperband".
        rates, norms, orders, seeds: the grid (see `kreg.tuning.SearchSpace`).
        epochs: epochs per run (Hyperband's maximum).
        batch_size: training batch size.
        max_trials: runs for "random" and "bayesian" (default: half the grid).
        metric: the objective the search optimizes and the progress shows
            (see `kreg.tuning.recommend`).
        learning_rate: Adam's learning rate.
        model_kwargs: further fixed builder overrides (e.g. `{"width": 32}`).
        data_seed: the seed of the dataset split.
        quiet: print no progress.
        trial_timeout: distributed chief: seconds without a sign of life
            (workers report after every epoch) after which a worker's run or
            pack is re-queued.
        connect_timeout: distributed worker: seconds to wait for the chief.
        executor: "auto", "packed" or "sequential" (see above).
        memory_budget: packed: bytes one pack may use (default 4 GiB); the
            pack size is the most branches that fit (`packing.pack_size`).
        max_pack: packed: the most branches of one pack.

    Example:

    ```python
    study = kreg.tuning.Study("mlp", "digits", "runs/mlp-digits", seeds=3)
    rows = study.run()
    print(kreg.tuning.recommend(rows))
    ```
    """

    def __init__(
        self,
        model="mlp",
        dataset="digits",
        directory="kreg-study",
        tuner="grid",
        rates=space_module.DEFAULT_RATES,
        norms=space_module.DEFAULT_NORMS,
        orders=space_module.DEFAULT_ORDERS,
        seeds=space_module.DEFAULT_SEEDS,
        epochs=DEFAULT_EPOCHS,
        batch_size=DEFAULT_BATCH_SIZE,
        max_trials=None,
        metric=schema.DEFAULT_METRIC,
        learning_rate=1e-3,
        model_kwargs=None,
        data_seed=0,
        quiet=False,
        trial_timeout=600.0,
        connect_timeout=600.0,
        executor="auto",
        memory_budget=packing.DEFAULT_MEMORY_BUDGET,
        max_pack=packing.DEFAULT_MAX_PACK,
        task=None,
        loss=None,
        optimizer=None,
        metrics=None,
        label=None,
    ):
        self.tuner = checks.check_choice("tuner", tuner, oracles.TUNERS)
        self.executor = checks.check_choice("executor", executor, EXECUTORS)
        self.max_pack = checks.check_positive_int("max_pack", max_pack)
        self.memory_budget = checks.check_positive("memory_budget", memory_budget)
        self.metric = schema.metric(metric)
        self.epochs = checks.check_positive_int("epochs", epochs)
        self.batch_size = checks.check_positive_int("batch_size", batch_size)
        self.max_trials = None if max_trials is None else checks.check_positive_int("max_trials", max_trials)
        self.trial_timeout = checks.check_positive("trial_timeout", trial_timeout)
        self.connect_timeout = checks.check_positive("connect_timeout", connect_timeout)
        self.quiet = checks.check_bool("quiet", quiet)
        self.directory = checks.check_path("directory", directory)
        data_seed = checks.check_seed("data_seed", data_seed)
        if task is not None:
            checks.check_choice("task", task, hypermodel_module.TASKS)
        hypermodel_module.check_compile_settings(loss, optimizer, metrics)
        space_module.SearchSpace(rates=rates, norms=norms, orders=orders, seeds=seeds)  # checked before any work
        model_name = model
        model = _resolve_model(model)
        self.data = self._load(dataset, data_seed, model, task, label)
        self.task = self._task(task, model)
        if self.task != "multiclass":
            self.data = _with_target_columns(self.data)
        self.hypermodel = hypermodel_module.RegularizationHyperModel(
            model,
            input_shape=self.data.input_shape,
            num_classes=self.data.num_classes,
            rates=rates,
            norms=norms,
            orders=orders,
            seeds=seeds,
            learning_rate=learning_rate,
            model_kwargs=model_kwargs,
            task=self.task,
            loss=loss,
            optimizer=optimizer,
            metrics=metrics,
        )
        self.space = self.hypermodel.space
        self._check_model(model)
        self.description = self._describe(model_name, model, dataset, data_seed, learning_rate, loss, optimizer, metrics)

    @staticmethod
    def _load(dataset, data_seed, model, task, label):
        from kreg import datasets

        if isinstance(dataset, str):
            as_images = True if _takes_images(model) else None  # None: the dataset's natural form
            kwargs = {} if label is None else {"label": label}
            return datasets.load(dataset, seed=data_seed, as_images=as_images, **kwargs)
        if isinstance(dataset, tuple):
            return datasets.from_arrays(dataset, task=None if task == "binary" else task, seed=data_seed)
        if isinstance(dataset, datasets.Dataset):
            return datasets.check(dataset)
        raise checks.fail("dataset", "a dataset name, a kreg.datasets.Dataset or arrays (x, y) / ((x, y), (x_val, y_val)[, (x_test, y_test)])", dataset)

    def _task(self, task, model):
        """The task: given, or the data's, with one sigmoid output making a
        two-class problem "binary"."""
        width = _output_width(model)
        data = self.data
        if task is None:
            task = data.task
            if task == "multiclass" and data.num_classes == 2 and width == 1:
                task = "binary"
        if (task == "regression") != (data.task == "regression"):
            raise checks.fail("task", f"{data.task!r} or a classification task for these labels" if data.task != "regression" else "'regression' for these continuous targets", task)
        if task == "binary" and data.num_classes != 2:
            raise checks.fail("task", f"'multiclass' for labels of {data.num_classes} classes ('binary' needs 2)", task)
        if isinstance(model, str) and task != "multiclass":
            raise checks.fail("task", "'multiclass' for a zoo model (they end in a softmax; bring a model of your own)", task)
        return task

    def _check_model(self, model):
        """Builds the first configuration of a builder or keras.Model once and
        checks that it takes the data and gives the task's output."""
        if isinstance(model, str):
            from kreg.models import registry

            unknown = sorted(set(self.hypermodel.model_kwargs) - set(registry.defaults(model)))
            if unknown:
                raise checks.fail("model_kwargs", f"overrides of {model!r} ({', '.join(registry.defaults(model))})", unknown)
            return
        import keras

        probe = self.hypermodel.build_model(self.space.configs()[0])
        if not isinstance(probe, keras.Model):
            raise checks.fail("model", "a builder that returns a keras.Model", probe)
        expected = tuple(self.data.input_shape)
        got = tuple(probe.inputs[0].shape[1:]) if getattr(probe, "inputs", None) else None
        if got is not None and (len(got) != len(expected) or any(g is not None and g != e for g, e in zip(got, expected))):
            raise ValueError(f"model must take examples of shape {expected} (the dataset's), got input shape {got}")
        width = probe.outputs[0].shape[-1] if getattr(probe, "outputs", None) else None
        wanted = {"multiclass": self.data.num_classes, "binary": 1}.get(self.task, self.data.y_train.shape[-1])
        if width is not None and width != wanted:
            raise ValueError(f"model must have an output of width {wanted} for task {self.task!r}, got output width {width}")

    def _describe(self, model_name, model, dataset, data_seed, learning_rate, loss, optimizer, metrics):
        """What identifies this study on disk (JSON-normalized)."""
        description = {
            "model": _model_identity(model_name, model),
            "dataset": _dataset_identity(dataset),
            "data_seed": data_seed,
            "tuner": self.tuner,
            **self.space.settings(),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "max_trials": self.max_trials,
            "learning_rate": learning_rate,
            "model_kwargs": self.hypermodel.model_kwargs,
            "metric": self.metric.name,
        }
        # Settings added later identify a study only where they are used, so
        # that directories of earlier studies resume.
        extra = {"task": None if self.task == "multiclass" else self.task, "loss": loss, "optimizer": optimizer, "metrics": metrics}
        description.update({name: _serialized(value) for name, value in extra.items() if value is not None})
        return json.loads(json.dumps(description))

    def trial_budget(self):
        """Number of runs the search makes (None for Hyperband)."""
        if self.tuner == "grid":
            return len(self.space)
        if self.tuner == "hyperband":
            return None
        return self.max_trials or max(1, len(self.space) // 2)

    def _not_packable_reason(self):
        """Why this study cannot train in packs (None if it can)."""
        if self.executor == "sequential":
            return None
        if self.tuner != "grid":
            return (
                f"packing needs the grid tuner, this study uses {self.tuner!r} "
                "(Hyperband changes the epochs per run, random and Bayesian search propose runs one by one)"
            )
        return None

    def _executor(self, role, recorded, progress):
        """The executor of this study in this process's `role`."""
        make_oracle = functools.partial(
            oracles.build, self.tuner, self.space, self.metric, self.epochs, self.trial_budget(), recorded
        )
        arguments = (make_oracle, self.hypermodel, self.data, self.epochs, self.batch_size, self.directory)
        # Workers train what the chief hands out (packs or runs) and write
        # nothing, so their trainer keeps no checkpoints; the chief only sizes
        # packs with its trainer.
        if role == "worker":
            trainer = packing.PackTrainer(self.hypermodel, self.data, self.epochs, self.batch_size)
            return distributed.WorkerExecutor(trials.TrialExecutor(*arguments, trainer=trainer, say=progress.say), self.connect_timeout)
        # The packing rules of a local study decide the chief's packs too.
        reason = self._not_packable_reason()
        if reason is not None:
            progress.say(f"kreg: {'handing out' if role == 'chief' else 'training'} run by run: {reason}")
        packed = self.executor != "sequential" and reason is None
        if role == "chief":
            trainer = packing.PackTrainer(self.hypermodel, self.data, self.epochs, self.batch_size) if packed else None
            return distributed.ChiefExecutor(make_oracle, self.trial_timeout, progress, trainer, self.memory_budget, self.max_pack)
        run_by_run = trials.TrialExecutor(*arguments, say=progress.say)
        if not packed:
            return run_by_run
        trainer = packing.PackTrainer(
            self.hypermodel,
            self.data,
            self.epochs,
            self.batch_size,
            checkpoint_dir=os.path.join(self.directory, checkpoints.PACKS_DIR),
            on_save=progress.saved,
        )
        return packing.PackedExecutor(trainer, self.memory_budget, self.max_pack, fallback=run_by_run, progress=progress)

    def run(self):
        """Runs (or resumes) the study.

        Returns:
            The `Results` of every run so far; None on a distributed worker
            (the chief holds the rows).

        Raises:
            StudyLockedError: another process runs this directory's study.
            StudyConflictError: the directory holds another study.
            StudyWriteError: a study file could not be written (an OSError).
        """
        role = distributed.role()
        if role == "worker":  # workers write nothing: the chief holds the directory
            self._execute(role, [])
            return None
        with directory_module.claim(self.directory, self.description):
            self._execute(role, ledger.results(self.directory))
            return ledger.results(self.directory)

    def _execute(self, role, recorded):
        """Picks the executor and trains every configuration not in `recorded`."""
        keys = {row["key"] for row in recorded}
        todo = [config for config in self.space.configs() if self.space.key(config) not in keys]
        progress = progress_module.Progress(self.trial_budget(), done=len(recorded), quiet=self.quiet, metric_column=self.metric.column)
        self.progress = progress

        def record(config, outcome, worker):
            row = ledger.record_run(self.directory, config, outcome, worker)
            progress.update(row)
            return row

        with keras_compat.tensorflow_unless_imported():
            self._executor(role, recorded, progress).run(todo, record)

    def best(self, metric=schema.DEFAULT_METRIC):
        """The best configuration recorded so far, by the mean over seeds.

        Args:
            metric: the metric that decides (see `kreg.tuning.recommend`).

        Returns:
            A dict `{"norm", "order", "rate", "score", "seeds"}`: the
            configuration, its mean `metric` and how many seeds ran it.

        Raises:
            ValueError: no completed run yet.
        """
        measure = schema.metric(metric)
        groups = recommendation.group_by_config(ledger.results(self.directory), measure.column)
        if not groups:
            raise ValueError(f"directory {self.directory!r} holds no completed run yet: run() the study first")
        sign = 1 if measure.direction == "min" else -1
        means = {key: sum(values.values()) / len(values) for key, values in groups.items()}
        norm, order, rate = min(means, key=lambda key: (sign * means[key], key[2]))
        return {"norm": norm, "order": order, "rate": rate, "score": means[(norm, order, rate)], "seeds": len(groups[(norm, order, rate)])}

    def recommended_config(self):
        """The configuration `refit` trains by default: the study's
        normalization in the recommended order, at the fitted optimum rate
        (rounded to 0.01), or at the best grid rate where there is no fit;
        without a normalization in the grid, the best rate without one."""
        if self.space.norms == ("none",):
            best = self.best()
            return {"norm": "none", "order": None, "rate": best["rate"], "seed": self.space.seeds[0]}
        norm = next(n for n in self.space.norms if n != "none")
        rec = recommendation.recommend(ledger.results(self.directory), norm=norm)
        rate = rec.best_rate_with if rec.optimum_with is None else round(rec.optimum_with, 2)
        return {"norm": norm, "order": rec.best_order_with, "rate": rate, "seed": self.space.seeds[0]}

    def refit(self, config=None, epochs=None):
        """Trains one configuration on the training and validation splits
        together and returns the model: the winner back.

        Args:
            config: a dict with `norm`, `order`, `rate` (and optionally
                `seed`); None: `recommended_config()`.
            epochs: epochs to train (default: the study's).

        Returns:
            The trained, compiled `keras.Model`.

        Example:

        ```python
        study.run()
        model = study.refit()
        model.save("best.keras")
        ```
        """
        import keras
        import numpy as np

        config = dict(self.recommended_config() if config is None else config)
        config.setdefault("seed", self.space.seeds[0])
        config["norm"] = "none" if config.get("norm") is None else config["norm"]
        config["order"] = None if config["norm"] == "none" else config.get("order") or self.space.orders[0]
        checks.check_rate("config['rate']", config.get("rate"))
        epochs = self.epochs if epochs is None else checks.check_positive_int("epochs", epochs)
        keras.backend.clear_session()
        with keras_compat.tensorflow_unless_imported():
            model = self.hypermodel.build_model(config)
            model.compile(**self.hypermodel.compile_kwargs(model))
            x = np.concatenate([self.data.x_train, self.data.x_val])
            y = np.concatenate([self.data.y_train, self.data.y_val])
            training.seeded_fit(model, config["seed"], x, y, None, epochs, self.batch_size)
        return model
