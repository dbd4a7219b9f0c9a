"""`Study`: a resumable, distributable Keras Tuner search of dropout rate x
normalization x block order, one recorded row per run."""

import json
import os
import time

import keras
import keras_tuner
from keras_tuner import errors
from keras_tuner.engine import base_tuner

from kreg.tuning import checks
from kreg.tuning import distributed
from kreg.tuning import hypermodel as hypermodel_module
from kreg.tuning import ledger
from kreg.tuning import oracles
from kreg.tuning import packing
from kreg.tuning import recommendation
from kreg.tuning import training

# The default study (`kreg study`), sized to finish in a few minutes on 2 CPU
# cores with TensorFlow: 3 rates x (no norm + batch norm x 2 orders) x 5 seeds
# = 45 runs of 20 epochs. At 20 epochs the digits mlp starts to overfit, so
# dropout can matter (at 10 epochs rate 0 wins everywhere: undertrained).
DEFAULT_RATES = (0.0, 0.2, 0.4)
DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 32
EXECUTORS = ("auto", "packed", "sequential")
ORACLES = {
    "grid": oracles.GridOracle,
    "random": oracles.RandomOracle,
    "bayesian": oracles.BayesianOracle,
    "hyperband": oracles.HyperbandOracle,
}


class Heartbeat(keras.callbacks.Callback):
    """Calls `beat(epoch)` after every epoch (a sign of life for the chief)."""

    def __init__(self, beat):
        super().__init__()
        self.beat = beat

    def on_epoch_end(self, epoch, logs=None):
        self.beat(epoch)


def _takes_images(model):
    """True for a zoo model that takes images (height, width, channels)."""
    if not isinstance(model, str):
        return False
    from kreg import models

    return model in models.list_models() and models.info(model).input == "image"


class StudyTuner(base_tuner.BaseTuner):
    """Runs one configuration per trial: build, fit, measure, report.

    Trials are answered with the run's measurements; the oracle records them.
    Under Hyperband a trial trains from scratch for its "tuner/epochs" (no
    checkpoint is carried between rounds).
    A NaN loss fails the run (recorded, the study goes on); any other error
    is a bug and stops the search.

    Args:
        oracle: a `kreg.tuning.oracles.LedgerOracle`.
        hypermodel: a `RegularizationHyperModel`.
        data: a `kreg.datasets.Dataset`.
        epochs: epochs per run (Hyperband sets its own per trial).
        batch_size: training batch size.
        idle_wait: seconds to wait before asking again when the oracle has no
            run to give yet (distributed mode).
        **kwargs: `BaseTuner` arguments (`directory`, `project_name`).
    """

    def __init__(self, oracle, hypermodel, data, epochs, batch_size, idle_wait=0.5, **kwargs):
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)
        self.data = data
        self.epochs = epochs
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self._waiting = False

    def _populate_initial_space(self):
        # Declaring is enough: every dimension (conditional ones included) is
        # registered without building a model.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def pre_create_trial(self):
        # Keras Tuner asks again at once when the oracle answers "idle".
        if self._waiting:
            time.sleep(self.idle_wait)
        self._waiting = True

    def on_trial_begin(self, trial):
        self._waiting = False

    def run_trial(self, trial):
        hp = trial.hyperparameters
        config = oracles.config_of(hp)
        keras.backend.clear_session()
        keras.utils.set_random_seed(config["seed"])
        try:
            model = self.hypermodel.build(hp)
            epochs = hp.values.get("tuner/epochs", self.epochs)
            heartbeat = Heartbeat(lambda epoch: self.oracle.update_trial(trial.trial_id, {oracles.HEARTBEAT: epoch}))
            return training.fit_and_measure(model, self.data, epochs, self.batch_size, config["seed"], callbacks=[heartbeat])
        except errors.FailedTrialError:
            raise
        except Exception as e:
            raise errors.FatalError(f"run {config} crashed: {type(e).__name__}: {e}") from e

    @property
    def project_dir(self):
        # Keras Tuner creates this folder on every access; kreg writes nothing there.
        return os.path.join(str(self.directory), self.project_name)

    def save(self):
        """Not written: the ledger is the state."""

    def reload(self):
        """Nothing to reload: the ledger is the state."""


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

    Args:
        model: a zoo model name (default "mlp") or a builder function (see
            `RegularizationHyperModel`).
        dataset: a `kreg.datasets.load` name (default "digits") or a
            `kreg.datasets.Dataset`.
        directory: the study directory.
        tuner: "grid" (every configuration), "random", "bayesian" or
            "hyperband".
        rates: dropout rates, each in [0, 1) (default: `DEFAULT_RATES`).
        norms: normalizations: None, "batch", "layer", "group".
        orders: block orders searched when a normalization is used.
        seeds: number of seeds (0..N-1) or a list of int seeds.
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
        rates=DEFAULT_RATES,
        norms=hypermodel_module.DEFAULT_NORMS,
        orders=hypermodel_module.DEFAULT_ORDERS,
        seeds=5,
        epochs=DEFAULT_EPOCHS,
        batch_size=DEFAULT_BATCH_SIZE,
        max_trials=None,
        metric="val_loss",
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
        self.tuner = checks.check_tuner(tuner)
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
        self.executor = executor
        self.max_pack = checks.check_positive_int("max_pack", max_pack)
        if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, float)) or memory_budget <= 0:
            raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget!r}")
        self.memory_budget = memory_budget
        self.metric = metric
        self.column, self.direction = recommendation.check_metric(metric)
        self.epochs = checks.check_positive_int("epochs", epochs)
        self.batch_size = checks.check_positive_int("batch_size", batch_size)
        if max_trials is not None:
            checks.check_positive_int("max_trials", max_trials)
        for name, value in (("trial_timeout", trial_timeout), ("connect_timeout", connect_timeout)):
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if not isinstance(directory, (str, os.PathLike)):
            raise ValueError(f"directory must be a path, got {directory!r}")
        self.directory = os.fspath(directory)
        self.data = self._load(dataset, data_seed, model)
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
        )
        self.max_trials = max_trials
        self.quiet = quiet
        self.trial_timeout = float(trial_timeout)
        self.connect_timeout = float(connect_timeout)
        self.description = self._describe(model, dataset, data_seed, learning_rate)

    @staticmethod
    def _load(dataset, data_seed, model):
        if isinstance(dataset, str):
            from kreg import datasets

            as_images = True if _takes_images(model) else None  # None: the dataset's natural form
            return datasets.load(dataset, seed=data_seed, as_images=as_images)
        missing = [a for a in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "num_classes") if not hasattr(dataset, a)]
        if missing:
            raise ValueError(f"dataset must be a dataset name or a kreg.datasets.Dataset, got {dataset!r} (missing {missing})")
        return dataset

    def _describe(self, model, dataset, data_seed, learning_rate):
        """What identifies this study on disk (JSON-normalized)."""
        h = self.hypermodel
        description = {
            "model": model if isinstance(model, str) else f"{model.__module__}.{model.__qualname__}",
            "dataset": dataset if isinstance(dataset, str) else getattr(dataset, "name", "custom"),
            "data_seed": data_seed,
            "tuner": self.tuner,
            "rates": h.rates,
            "norms": h.norms,
            "orders": h.orders,
            "seeds": h.seeds,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "max_trials": self.max_trials,
            "learning_rate": learning_rate,
            "model_kwargs": h.model_kwargs,
            "metric": self.metric,
        }
        return json.loads(json.dumps(description))

    def trial_budget(self):
        """Number of runs the search makes (None for Hyperband)."""
        if self.tuner == "grid":
            return self.hypermodel.grid_size()
        if self.tuner == "hyperband":
            return None
        return self.max_trials or max(1, self.hypermodel.grid_size() // 2)

    def _claim_directory(self):
        """Creates the study directory or checks that it holds this study."""
        found = ledger.read_study(self.directory)
        if found is None:
            # A temporary file is what a process killed while writing study.json leaves.
            leftovers = [n for n in os.listdir(self.directory) if not n.endswith(".tmp")] if os.path.isdir(self.directory) else []
            if leftovers:
                raise ValueError(
                    f"directory {self.directory!r} is not empty and holds no kreg study "
                    f"(no {ledger.STUDY_FILE}); choose an empty or new directory"
                )
            ledger.write_study(self.directory, self.description)
            return
        differ = [k for k in sorted(set(found) | set(self.description)) if found.get(k) != self.description.get(k)]
        if differ:
            details = "; ".join(f"{k}: {found.get(k)!r} there, {self.description.get(k)!r} here" for k in differ)
            raise ValueError(
                f"directory {self.directory!r} holds a different study ({details}); "
                "use another directory, or the same settings to resume it"
            )

    def _progress(self, recorded):
        """The progress line of either executor, counting the recorded runs as done."""
        return oracles.Progress(self.trial_budget(), done=len(recorded), quiet=self.quiet, metric_column=self.column)

    def _oracle(self, directory):
        objective = keras_tuner.Objective(self.column, self.direction)
        common = dict(objective=objective, seed=1, max_consecutive_failed_trials=10**9)
        if self.tuner == "grid":
            kwargs = dict(common)
        elif self.tuner == "hyperband":
            kwargs = dict(common, max_epochs=self.epochs)
        else:
            kwargs = dict(common, max_trials=self.trial_budget())
        recorded = ledger.results(directory) if directory else []
        progress = self._progress(recorded)
        return ORACLES[self.tuner](directory=directory, recorded=recorded, progress=progress, **kwargs)

    def _not_packable_reason(self, mode):
        """Why this study cannot train in packs (None if it can)."""
        if mode != "local":
            return "a distributed study hands out one run per trial"
        if self.tuner != "grid":
            return (
                f"packing needs the grid tuner, this study uses {self.tuner!r} "
                "(Hyperband changes the epochs per run, random and Bayesian search propose runs one by one)"
            )
        return None

    def _run_packed(self):
        """Trains every unrecorded grid point in packs.

        Returns:
            None when done, or why the rest must train run by run (a
            configuration whose model cannot be packed).
        """
        recorded = ledger.results(self.directory)
        keys = {row["key"] for row in recorded}
        todo = [config for config in packing.grid_configs(self.hypermodel) if ledger.run_key(config) not in keys]
        progress = self._progress(recorded)
        trainer = packing.PackTrainer(self.hypermodel, self.data, self.epochs, self.batch_size)

        def record(outcome):
            row = ledger.record_run(
                self.directory, outcome.config, outcome.metrics, outcome.status, message=outcome.message, worker="packed"
            )
            progress.update(row)

        try:
            packing.train_in_packs(trainer, todo, record, self.memory_budget, self.max_pack)
        except packing.NotPackableError as e:
            return f"packing does not apply: {e}"
        return None

    def run(self):
        """Runs (or resumes) the study.

        Returns:
            The `Results` of every run so far; None on a distributed worker
            (the chief holds the rows).
        """
        mode = distributed.role()
        if mode != "worker":
            self._claim_directory()
        if self.executor != "sequential":
            reason = self._not_packable_reason(mode)
            if reason is None:
                reason = self._run_packed()
            if reason is None:
                return ledger.results(self.directory)
            if not self.quiet:
                print(f"kreg: training run by run: {reason}", flush=True)
        if mode == "worker":
            distributed.set_worker_timeout(self.connect_timeout)
            oracle = self._oracle(None)
        else:
            oracle = self._oracle(self.directory)
        # On the chief the tuner only declares the search space to the oracle.
        tuner = StudyTuner(
            oracle,
            self.hypermodel,
            self.data,
            self.epochs,
            self.batch_size,
            directory=self.directory,
            project_name="keras_tuner",
        )
        if mode == "chief":
            distributed.serve_chief(oracle, self.trial_timeout)
        else:
            tuner.search()
        if mode == "worker":
            return None
        return ledger.results(self.directory)
