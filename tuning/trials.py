"""The run-by-run executor: one Keras Tuner trial per run.

Every tuner (grid, random, Bayesian, Hyperband) and the workers of a
distributed study train this way. Packing (`kreg.tuning.packed`) is faster
where it applies.
"""

import dataclasses
import os
import time

import keras
from keras_tuner import errors

from kreg.tuning import keras_tuner_compat as compat
from kreg.tuning import oracles
from kreg.tuning import training


class Heartbeat(keras.callbacks.Callback):
    """Calls `beat(epoch)` after every epoch (a sign of life for the chief)."""

    def __init__(self, beat):
        super().__init__()
        self.beat = beat

    def on_epoch_end(self, epoch, logs=None):
        self.beat(epoch)


class StudyTuner(compat.DeclaredSpaceTuner):
    """Runs one configuration per trial: build, fit, measure, report.

    Trials are answered with the run's measurements; the oracle records them.
    Under Hyperband a trial trains from scratch for its "tuner/epochs" (no
    checkpoint is carried between rounds). A NaN loss fails the run
    (recorded, the study goes on); any other error is a bug and stops the
    search.

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

    def declare_space(self, hp):
        self.hypermodel.declare_hyperparameters(hp)

    def pre_create_trial(self):
        # Keras Tuner asks again at once when the oracle answers "idle".
        if self._waiting:
            time.sleep(self.idle_wait)
        self._waiting = True

    def on_trial_begin(self, trial):
        self._waiting = False

    def run_trial(self, trial):
        hp = trial.hyperparameters
        config = self.hypermodel.space.config_of(hp)
        keras.backend.clear_session()
        keras.utils.set_random_seed(config["seed"])
        try:
            model = self.hypermodel.build(hp)
            epochs = hp.values.get("tuner/epochs", self.epochs)
            heartbeat = Heartbeat(lambda epoch: self.oracle.update_trial(trial.trial_id, {oracles.HEARTBEAT: epoch}))
            outcome = training.fit_and_measure(model, self.data, epochs, self.batch_size, config["seed"], callbacks=[heartbeat])
        except Exception as e:
            raise errors.FatalError(f"run {config} crashed: {type(e).__name__}: {e}") from e
        if outcome.status == "failed":
            raise errors.FailedTrialError(outcome.message)
        # Keras Tuner takes numbers only; what a run does not measure (accuracy of a regression) stays None in its row.
        return {name: value for name, value in outcome.metrics.items() if value is not None}

    @property
    def project_dir(self):
        # Keras Tuner creates this folder on every access; kreg writes nothing there.
        return os.path.join(str(self.directory), self.project_name)

    def save(self):
        """Not written: the ledger is the state."""

    def reload(self):
        """Nothing to reload: the ledger is the state."""


@dataclasses.dataclass
class TrialExecutor:
    """Trains run by run, one Keras Tuner trial each.

    Attributes:
        make_oracle: `make_oracle(todo, record)` -> the study's oracle.
        hypermodel: the study's `RegularizationHyperModel`.
        data: a `kreg.datasets.Dataset`.
        epochs: epochs per run.
        batch_size: training batch size.
        directory: the study directory (Keras Tuner's `directory`).
    """

    make_oracle: object
    hypermodel: object
    data: object
    epochs: int
    batch_size: int
    directory: str

    def run(self, todo, record):
        """Searches: the grid trains `todo`; the other tuners what they propose."""
        tuner = StudyTuner(
            self.make_oracle(todo, record),
            self.hypermodel,
            self.data,
            self.epochs,
            self.batch_size,
            directory=self.directory,
            project_name="keras_tuner",
        )
        tuner.search()
