"""`Study`: a resumable, distributable Keras Tuner search of dropout rate x
normalization x block order, one recorded row per run.

`run()` claims the directory, picks an executor, executes, and returns the
results. Executors share one protocol, `run(todo, record)`: `todo` holds the
configurations not recorded yet, and every run goes through `record(config,
outcome, worker)`, the study's one record path (ledger row, then progress).

- `kreg.tuning.packing.PackedExecutor`: many runs as one model (local grid);
- `kreg.tuning.trials.TrialExecutor`: one Keras Tuner trial per run;
- `kreg.tuning.distributed.ChiefExecutor` / `WorkerExecutor`: Keras Tuner's
  chief and workers.
"""

import functools
import json

from kreg import checks
from kreg.tuning import directory as directory_module
from kreg.tuning import distributed
from kreg.tuning import hypermodel as hypermodel_module
from kreg.tuning import ledger
from kreg.tuning import oracles
from kreg.tuning import packing
from kreg.tuning import progress as progress_module
from kreg.tuning import schema
from kreg.tuning import space as space_module
from kreg.tuning import trials

# The default study (`kreg study`), sized to finish in about a minute on 2 CPU
# cores (packed): 7 rates 0..0.6 (enough points for the fitted optimum) x
# (no norm + batch norm x 2 orders) x 5 seeds = 105 runs of 20 epochs. At 20
# epochs the digits mlp starts to overfit, so dropout can matter (at 10 epochs
# rate 0 wins everywhere: undertrained).
DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 32
EXECUTORS = ("auto", "packed", "sequential")


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
    the rows, workers train.

    Executors: "sequential" trains one Keras Tuner trial per run. "packed"
    trains many runs (any configurations and seeds) as branches of one
    compiled model (`kreg.tuning.packing`): the same rows, several times
    faster. Packing needs the grid tuner in a local study and a packable
    builder (one input, one output, no regularization losses); otherwise the
    study says so once and trains run by run. "auto" (the default) packs
    where it can. A study stopped during a pack keeps the rows of every
    finished pack and trains the unfinished pack again. The executor does not identify a study: one
    started with an executor may be resumed with another.

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
            (workers report after every epoch) after which a worker's run is
            re-queued.
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
        self.space = space_module.SearchSpace(rates=rates, norms=norms, orders=orders, seeds=seeds)
        self.data = self._load(dataset, data_seed, model)
        self.hypermodel = hypermodel_module.RegularizationHyperModel(
            model,
            input_shape=self.data.input_shape,
            num_classes=self.data.num_classes,
            rates=self.space.rates,
            norms=self.space.norms,
            orders=self.space.orders,
            seeds=self.space.seeds,
            learning_rate=learning_rate,
            model_kwargs=model_kwargs,
        )
        self.space = self.hypermodel.space  # the same grid, checked above before any work
        self.description = self._describe(model, dataset, data_seed, learning_rate)

    @staticmethod
    def _load(dataset, data_seed, model):
        if isinstance(dataset, str):
            from kreg import datasets

            as_images = True if _takes_images(model) else None  # None: the dataset's natural form
            return datasets.load(dataset, seed=data_seed, as_images=as_images)
        missing = [a for a in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "num_classes") if not hasattr(dataset, a)]
        if missing:
            raise checks.fail("dataset", f"a dataset name or a kreg.datasets.Dataset (missing {missing})", dataset)
        return dataset

    def _describe(self, model, dataset, data_seed, learning_rate):
        """What identifies this study on disk (JSON-normalized)."""
        description = {
            "model": model if isinstance(model, str) else f"{model.__module__}.{model.__qualname__}",
            "dataset": dataset if isinstance(dataset, str) else getattr(dataset, "name", "custom"),
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
        return json.loads(json.dumps(description))

    def trial_budget(self):
        """Number of runs the search makes (None for Hyperband)."""
        if self.tuner == "grid":
            return len(self.space)
        if self.tuner == "hyperband":
            return None
        return self.max_trials or max(1, len(self.space) // 2)

    def _not_packable_reason(self, role):
        """Why this study cannot train in packs (None if it can)."""
        if self.executor == "sequential":
            return None
        if role != "local":
            return "a distributed study hands out one run per trial"
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
        if role == "chief":
            return distributed.ChiefExecutor(make_oracle, self.trial_timeout)
        run_by_run = trials.TrialExecutor(make_oracle, self.hypermodel, self.data, self.epochs, self.batch_size, self.directory)
        if role == "worker":
            return distributed.WorkerExecutor(run_by_run, self.connect_timeout)
        reason = self._not_packable_reason(role)
        if self.executor == "sequential" or reason is not None:
            if reason is not None:
                progress.say(f"kreg: training run by run: {reason}")
            return run_by_run
        trainer = packing.PackTrainer(self.hypermodel, self.data, self.epochs, self.batch_size)
        return packing.PackedExecutor(trainer, self.memory_budget, self.max_pack, fallback=run_by_run, say=progress.say)

    def run(self):
        """Runs (or resumes) the study.

        Returns:
            The `Results` of every run so far; None on a distributed worker
            (the chief holds the rows).

        Raises:
            StudyConflictError: the directory holds another study.
        """
        role = distributed.role()
        recorded = []
        if role != "worker":
            directory_module.claim(self.directory, self.description)
            recorded = ledger.results(self.directory)
        keys = {row["key"] for row in recorded}
        todo = [config for config in self.space.configs() if self.space.key(config) not in keys]
        progress = progress_module.Progress(self.trial_budget(), done=len(recorded), quiet=self.quiet, metric_column=self.metric.column)

        def record(config, outcome, worker):
            row = ledger.record_run(self.directory, config, outcome, worker)
            progress.update(row)
            return row

        self._executor(role, recorded, progress).run(todo, record)
        return None if role == "worker" else ledger.results(self.directory)
