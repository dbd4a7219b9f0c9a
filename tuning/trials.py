"""The run-by-run executor: one Keras Tuner trial per run.

Every tuner (grid, random, Bayesian, Hyperband) trains this way in a local
study where packing (`kreg.tuning.packing`, faster) does not apply. The
workers of a distributed study train this way too: a trial of one run as
here, a pack trial of the chief's (`kreg.tuning.oracles.PACK`) as one packed
model, or run by run where packing does not apply.
"""

import dataclasses
import os
import time

import keras
from keras_tuner import errors

from kreg.tuning import keras_tuner_compat as compat
from kreg.tuning import oracles
from kreg.tuning import packing
from kreg.tuning import training

# The fewest seconds between two heartbeats within an epoch (`Heartbeat`).
BEAT_INTERVAL = 1.0


class Heartbeat(keras.callbacks.Callback):
    """Calls `beat(epoch)`, a sign of life for the chief: when training
    starts, after every epoch, and before a batch when `interval` seconds
    have passed since the last beat, so that an epoch longer than the
    chief's `trial_timeout` does not pass for a dead worker. (One step
    beats before it, not during it: a first step that compiles for longer
    than `trial_timeout` still does.)

    Args:
        beat: `beat(epoch)`, the epoch (from 0) under way or just ended.
        interval: the fewest seconds between two beats within an epoch.
    """

    def __init__(self, beat, interval=BEAT_INTERVAL):
        super().__init__()
        self.beat = beat
        self.interval = interval
        self.epoch = 0
        self.last = time.monotonic()

    def _beat(self):
        self.last = time.monotonic()
        self.beat(self.epoch)

    def on_train_begin(self, logs=None):
        self._beat()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    # A batch-begin hook: a batch-end hook would stop Keras' asynchronous dispatch.
    def on_train_batch_begin(self, batch, logs=None):
        if time.monotonic() - self.last >= self.interval:
            self._beat()

    def on_epoch_end(self, epoch, logs=None):
        self._beat()


class StudyTuner(compat.DeclaredSpaceTuner):
    """Runs one configuration per trial: build, fit, measure, report.

    Trials are answered with the run's measurements; the oracle records them.
    Under Hyperband a trial trains from scratch for its "tuner/epochs" (no
    checkpoint is carried between rounds). A NaN loss fails the run
    (recorded, the study goes on); any other error is a bug and stops the
    search.

    A pack trial (a distributed chief's, see `kreg.tuning.oracles`) trains
    its runs as one model with `trainer`, or run by run where they cannot be
    packed (`packing.NotPackableError`, said once, as the local packed
    executor does); the outcomes of its runs are attached to the trial, whose
    own answer is its first completed run (it fails when none completed).

    Args:
        oracle: a `kreg.tuning.oracles.LedgerOracle`.
        hypermodel: a `RegularizationHyperModel`.
        data: a `kreg.datasets.Dataset`.
        epochs: epochs per run (Hyperband sets its own per trial).
        batch_size: training batch size.
        idle_wait: seconds to wait before asking again when the oracle has no
            run to give yet (distributed mode).
        trainer: a `kreg.tuning.packing.PackTrainer` for pack trials (None:
            run by run).
        say: prints one line for the user (`Progress.say`).
        **kwargs: `BaseTuner` arguments (`directory`, `project_name`).
    """

    def __init__(self, oracle, hypermodel, data, epochs, batch_size, idle_wait=0.5, trainer=None, say=print, **kwargs):
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)
        self.data = data
        self.epochs = epochs
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.trainer = trainer
        self.say = say
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
        heartbeat = Heartbeat(lambda epoch: self.oracle.update_trial(trial.trial_id, {oracles.HEARTBEAT: epoch}))
        pack = oracles.pack_of(trial)
        if pack is not None:
            return self._run_pack(trial, pack, heartbeat)
        hp = trial.hyperparameters
        config = self.hypermodel.space.config_of(hp)
        outcome = self._train(config, hp.values.get("tuner/epochs", self.epochs), heartbeat)
        if outcome.status == "failed":
            raise errors.FailedTrialError(outcome.message)
        # Keras Tuner takes numbers only; what a run does not measure (accuracy of a regression) stays None in its row.
        return {name: value for name, value in outcome.metrics.items() if value is not None}

    def _run_pack(self, trial, pack, heartbeat):
        """Trains the runs of a pack trial and attaches their outcomes."""
        outcomes = None
        if self.trainer is not None:
            try:
                outcomes = [outcome for _, outcome in self.trainer.run(pack, callbacks=[heartbeat])]
            except packing.NotPackableError as e:  # raised before the pack trains
                self.say(f"kreg: training run by run: packing does not apply: {e}")
                self.trainer = None
            except Exception as e:
                raise errors.FatalError(f"pack {pack} crashed: {type(e).__name__}: {e}") from e
        if outcomes is None:
            outcomes = [self._train(config, self.epochs, heartbeat) for config in pack]
        oracles.attach_outcomes(trial, outcomes)
        metrics = oracles.score_metrics(outcomes)
        if metrics is None:
            raise errors.FailedTrialError(f"every run of the pack failed: {outcomes[0].message}")
        return metrics

    def _train(self, config, epochs, heartbeat):
        """Builds, trains and measures one run; a `schema.Outcome`."""
        keras.backend.clear_session()
        keras.utils.set_random_seed(config["seed"])
        try:
            model = self.hypermodel.build_model(config)
            model.compile(**self.hypermodel.compile_kwargs(model))
            return training.fit_and_measure(model, self.data, epochs, self.batch_size, config["seed"], callbacks=[heartbeat])
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
        trainer: a `kreg.tuning.packing.PackTrainer` for the pack trials of
            a distributed chief (None: every trial run by run).
        say: prints one line for the user (`Progress.say`).
    """

    make_oracle: object
    hypermodel: object
    data: object
    epochs: int
    batch_size: int
    directory: str
    trainer: object = None
    say: object = print

    def run(self, todo, record):
        """Searches: the grid trains `todo`; the other tuners what they propose
        (on a distributed worker: what the chief hands out)."""
        tuner = StudyTuner(
            self.make_oracle(todo, record),
            self.hypermodel,
            self.data,
            self.epochs,
            self.batch_size,
            trainer=self.trainer,
            say=self.say,
            directory=self.directory,
            project_name="keras_tuner",
        )
        tuner.search()
