"""Keras Tuner oracles that record every run through the study and replay it.

`LedgerOracle` is mixed into each Keras Tuner oracle (grid, random, Bayesian,
Hyperband). It changes three things:

- end of a run: the run's outcome goes to the study's `record` (on the chief
  in distributed mode, so workers need no shared disk);
- start of a run: a configuration that already has a row is not sent to a
  tuner; the oracle answers it from the row and moves on. A study restarted
  on the same directory therefore replays the search (the oracles are
  seeded) and trains only what is missing;
- Keras Tuner's own state files are not written: the ledger is the state.

`requeue_stale` is the supervision of distributed mode: a run whose tuner
gave no sign of life for `trial_timeout` seconds (its worker died) goes back
to the queue. Tuners send a heartbeat (`HEARTBEAT`) after every epoch.
"""

import time

import keras_tuner
from keras_tuner import oracles
from keras_tuner.engine import trial as trial_module

from kreg.tuning import keras_tuner_compat as compat
from kreg.tuning import schema

RUNNING = trial_module.TrialStatus.RUNNING
COMPLETED = trial_module.TrialStatus.COMPLETED
FAILED = trial_module.TrialStatus.FAILED
# A metric name tuners report after each epoch: a sign of life, not a result.
HEARTBEAT = "kreg/heartbeat"


class LedgerOracle(compat.NoStateFiles):
    """Mixin: recording through the study, replay of recorded runs, requeueing.

    Args:
        space: the study's `kreg.tuning.SearchSpace`.
        recorded: the rows already recorded.
        record: `record(config, outcome, worker)`, the study's one record path.
        **kwargs: the Keras Tuner oracle's arguments.
    """

    def __init__(self, space, recorded, record, **kwargs):
        super().__init__(**kwargs)
        self.space = space
        self.record = record
        self.recorded = {row["key"]: row for row in recorded}
        self.last_seen = {}  # trial_id -> time of the last sign of life
        self.holders = {}  # trial_id -> the tuner the run was last handed to
        self.verbose = 0  # Keras Tuner's own display; the study shows progress.

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        while True:
            trial = super().create_trial(tuner_id)
            if trial.status != RUNNING:
                return trial
            row = self.recorded.get(self.space.key(self.space.config_of(trial.hyperparameters)))
            if row is None:
                self.last_seen[trial.trial_id] = time.monotonic()
                self.holders[trial.trial_id] = tuner_id
                return trial
            self._replay(trial, row)

    def _replay(self, trial, row):
        """Ends `trial` with the outcome recorded in `row`, without training."""
        if row["status"] == "completed":
            metrics = {name: row[name] for name in schema.MEASURED_COLUMNS if row[name] is not None}
            self.update_trial(trial.trial_id, metrics)
            trial.status = COMPLETED
        else:
            trial.status = FAILED
            trial.message = row["message"]
        super().end_trial(trial)

    @keras_tuner.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        self.last_seen[trial_id] = time.monotonic()
        if HEARTBEAT in metrics:
            return self.trials[trial_id]
        return super().update_trial(trial_id, metrics, step=step)

    @keras_tuner.synchronized
    def end_trial(self, trial):
        worker = self.holders.get(trial.trial_id)
        status = trial.status
        super().end_trial(trial)
        ended = self.trials[trial.trial_id]
        config = self.space.config_of(ended.hyperparameters)
        key = self.space.key(config)
        if key in self.recorded or ended.status not in (COMPLETED, FAILED):
            return
        if ended.status == COMPLETED:
            outcome = schema.Outcome("completed", {name: ended.metrics.get_last_value(name) for name in ended.metrics.metrics})
        else:
            lines = (trial.message or "run failed").strip().splitlines() if status == FAILED else ["run failed"]
            outcome = schema.Outcome.failed(lines[-1])
        self.recorded[key] = self.record(config, outcome, worker)

    @keras_tuner.synchronized
    def requeue_stale(self, trial_timeout):
        """Sends back to the queue every run silent for `trial_timeout` s.

        Returns:
            The list of `(tuner_id, trial_id)` that were re-queued.
        """
        now = time.monotonic()
        stale = [
            tuner_id
            for tuner_id, trial in compat.ongoing_trials(self).items()
            if now - self.last_seen.get(trial.trial_id, now) > trial_timeout
        ]
        requeued = [(tuner_id, compat.requeue(self, tuner_id)) for tuner_id in stale]
        for tuner_id, trial_id in requeued:
            print(f"{tuner_id} held run {trial_id} silently for {trial_timeout:g}s: re-queued", flush=True)
        return requeued


class GridOracle(LedgerOracle, keras_tuner.Oracle):
    """Every configuration of `todo` once, in order, to as many tuners as ask.

    Keras Tuner's `GridSearchOracle` derives each new trial from a finished
    one, so with several workers all but one mostly wait; this oracle hands
    out the first configuration of the space's grid not tried yet.

    Args:
        todo: the configurations to hand out (`SearchSpace.configs()` less
            the recorded ones).
        **kwargs: `LedgerOracle` and `keras_tuner.Oracle` arguments.
    """

    def __init__(self, todo, **kwargs):
        super().__init__(**kwargs)
        self.todo = [{name: value for name, value in config.items() if value is not None} for config in todo]

    def populate_space(self, trial_id):
        for values in self.todo:
            if not compat.tried(self, values):
                return {"status": RUNNING, "values": values}
        # All handed out: wait while runs are ongoing (one may come back for
        # a retry when its worker dies), then stop.
        if compat.ongoing_trials(self):
            return {"status": trial_module.TrialStatus.IDLE, "values": None}
        return {"status": trial_module.TrialStatus.STOPPED, "values": None}


class RandomOracle(LedgerOracle, oracles.RandomSearchOracle):
    """Keras Tuner's random search with the ledger."""


class BayesianOracle(LedgerOracle, oracles.BayesianOptimizationOracle):
    """Keras Tuner's Bayesian optimization with the ledger."""


class HyperbandOracle(LedgerOracle, oracles.HyperbandOracle):
    """Keras Tuner's Hyperband with the ledger."""


TUNERS = ("grid", "random", "bayesian", "hyperband")


def build(tuner, space, metric, epochs, max_trials, recorded, todo, record):
    """The oracle of a study.

    Args:
        tuner: "grid", "random", "bayesian" or "hyperband".
        space: the `SearchSpace`.
        metric: the `schema.Metric` the search optimizes.
        epochs: epochs per run (Hyperband's maximum).
        max_trials: runs of a random or Bayesian search.
        recorded: the rows already recorded (replayed by the other tuners).
        todo: the unrecorded configurations (the grid hands out these).
        record: the study's record path.

    Returns:
        A `LedgerOracle`, its search space declared.
    """
    common = dict(
        space=space,
        recorded=recorded,
        record=record,
        objective=keras_tuner.Objective(metric.column, metric.direction),
        seed=1,
        max_consecutive_failed_trials=10**9,
    )
    if tuner == "grid":
        oracle = GridOracle(todo=todo, **common)
    elif tuner == "hyperband":
        oracle = HyperbandOracle(max_epochs=epochs, **common)
    elif tuner == "random":
        oracle = RandomOracle(max_trials=max_trials, **common)
    else:
        oracle = BayesianOracle(max_trials=max_trials, **common)
    hp = oracle.get_space()
    space.declare(hp)
    oracle.update_space(hp)
    return oracle
