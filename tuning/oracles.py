"""Keras Tuner oracles that record every run through the study and replay it.

`LedgerOracle` is mixed into each Keras Tuner oracle (grid, random, Bayesian,
Hyperband). It changes three things:

- end of a trial: the outcome of each of its runs goes to the study's
  `record` (on the chief in distributed mode, so workers need no shared
  disk);
- start of a trial: a trial whose runs all have a row is not sent to a
  tuner; the oracle answers it from the rows and moves on. A study restarted
  on the same directory therefore replays the search (the oracles are
  seeded) and trains only what is missing;
- Keras Tuner's own state files are not written: the ledger is the state.

A trial holds one run (a configuration, its hyperparameter values) or, on a
distributed chief's grid, a pack of runs: the values of its first run plus
the pack's configurations attached under `PACK` (JSON). A worker trains the
pack and attaches the outcomes of its runs under `OUTCOMES` (JSON, in the
pack's order, exact: Keras Tuner's metrics travel as 32-bit floats) to the
trial it ends; Keras Tuner scores a pack trial by its first completed run.

`requeue_stale` is the supervision of distributed mode: a trial whose tuner
gave no sign of life for `trial_timeout` seconds (its worker died) goes back
to the queue. Tuners send a heartbeat (`HEARTBEAT`) when training starts,
after every epoch and, within an epoch, about once a second
(`kreg.tuning.trials.Heartbeat`). A distributed chief also prints each
trial it hands out (`log_handouts`): "worker0 took pack 3 (4 runs)".
"""

import json
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
# The names under which a pack trial carries its configurations to a worker
# and the outcomes of its runs back (see `keras_tuner_compat.attach`).
PACK = "kreg/pack"
OUTCOMES = "kreg/outcomes"


def pack_of(trial):
    """The configurations of a pack trial, or None for a trial of one run."""
    text = compat.attachment(trial, PACK)
    return None if text is None else json.loads(text)


def describe(trial):
    """"pack ID (N runs)" or "run ID": a trial, for the chief's log."""
    pack = pack_of(trial)
    return f"run {trial.trial_id}" if pack is None else f"pack {trial.trial_id} ({len(pack)} runs)"


def attach_outcomes(trial, outcomes):
    """Attaches the `schema.Outcome`s of a pack trial's runs, in its order,
    for the chief (`LedgerOracle.end_trial`)."""
    payload = [{"status": o.status, "metrics": o.metrics, "message": o.message} for o in outcomes]
    compat.attach(trial, OUTCOMES, json.dumps(payload, default=lambda value: value.item()))  # numpy scalars


def score_metrics(outcomes):
    """What a pack trial reports to Keras Tuner: the metrics of its first
    completed run (numbers only), or None when none completed."""
    for outcome in outcomes:
        if outcome.status == "completed":
            return {name: value for name, value in outcome.metrics.items() if value is not None}
    return None


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
        self.holders = {}  # trial_id -> the tuner the trial was last handed to
        self.log_handouts = False  # print each trial handed to a tuner (a distributed chief)
        self.verbose = 0  # Keras Tuner's own display; the study shows progress.

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        while True:
            trial = super().create_trial(tuner_id)
            if trial.status != RUNNING:
                return trial
            configs = pack_of(trial) or [self.space.config_of(trial.hyperparameters)]
            rows = [self.recorded.get(self.space.key(config)) for config in configs]
            if None in rows:
                self.last_seen[trial.trial_id] = time.monotonic()
                self.holders[trial.trial_id] = tuner_id
                if self.log_handouts:
                    print(f"{tuner_id} took {describe(trial)}", flush=True)
                return trial
            self._replay(trial, rows)

    def _replay(self, trial, rows):
        """Ends `trial` with the outcomes recorded in `rows`, without training."""
        outcomes = [
            schema.Outcome(row["status"], {name: row[name] for name in schema.MEASURED_COLUMNS}, row["message"])
            for row in rows
        ]
        metrics = score_metrics(outcomes)
        if metrics is None:
            trial.status = FAILED
            trial.message = rows[0]["message"]
        else:
            self.update_trial(trial.trial_id, metrics)
            trial.status = COMPLETED
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
        outcomes = compat.detach(trial, OUTCOMES)  # before Keras Tuner records the trial's values
        status = trial.status
        super().end_trial(trial)
        ended = self.trials[trial.trial_id]
        pack = pack_of(ended)
        if pack is not None:
            runs = zip(pack, self._pack_outcomes(ended.trial_id, len(pack), outcomes))
        elif ended.status in (COMPLETED, FAILED):
            runs = [(self.space.config_of(ended.hyperparameters), self._run_outcome(ended, status, trial.message))]
        else:  # to be retried
            runs = []
        for config, outcome in runs:
            key = self.space.key(config)
            if key not in self.recorded:
                self.recorded[key] = self.record(config, outcome, worker)

    @staticmethod
    def _run_outcome(ended, status, message):
        """The outcome of a trial of one run, from its metrics or message."""
        if ended.status == COMPLETED:
            return schema.Outcome("completed", {name: ended.metrics.get_last_value(name) for name in ended.metrics.metrics})
        lines = (message or "run failed").strip().splitlines() if status == FAILED else ["run failed"]
        return schema.Outcome.failed(lines[-1])

    @staticmethod
    def _pack_outcomes(trial_id, size, text):
        """The outcomes a worker attached (`text`) to a pack trial of `size` runs."""
        outcomes = [] if text is None else [schema.Outcome(**outcome) for outcome in json.loads(text)]
        if len(outcomes) != size:
            raise ValueError(f"pack trial {trial_id} of {size} runs ended with {len(outcomes)} outcomes attached under {OUTCOMES!r}")
        return outcomes

    @keras_tuner.synchronized
    def requeue_stale(self, trial_timeout):
        """Sends back to the queue every trial silent for `trial_timeout` s.

        Returns:
            The list of `(tuner_id, trial_id)` that were re-queued.
        """
        now = time.monotonic()
        stale = {
            tuner_id: trial
            for tuner_id, trial in compat.ongoing_trials(self).items()
            if now - self.last_seen.get(trial.trial_id, now) > trial_timeout
        }
        requeued = []
        for tuner_id, trial in stale.items():
            requeued.append((tuner_id, compat.requeue(self, tuner_id)))
            print(f"{tuner_id} held {describe(trial)} silently for {trial_timeout:g}s: re-queued", flush=True)
        return requeued


class GridOracle(LedgerOracle, keras_tuner.Oracle):
    """Every configuration of `todo` once, in order, to as many tuners as ask.

    Keras Tuner's `GridSearchOracle` derives each new trial from a finished
    one, so with several workers all but one mostly wait; this oracle hands
    out the first configuration (or pack) of the space's grid not tried yet.

    Args:
        todo: the configurations to hand out (`SearchSpace.configs()` less
            the recorded ones).
        packs: None to hand out `todo` one run per trial, or `todo` cut into
            packs (lists of configurations) to hand out one pack per trial.
        **kwargs: `LedgerOracle` and `keras_tuner.Oracle` arguments.
    """

    def __init__(self, todo, packs=None, **kwargs):
        super().__init__(**kwargs)
        if packs is None:
            self.todo = [_values(config) for config in todo]
        else:
            self.todo = [dict(_values(pack[0]), **{PACK: json.dumps(pack)}) for pack in packs]

    def populate_space(self, trial_id):
        for values in self.todo:
            if not compat.tried(self, values):
                return {"status": RUNNING, "values": dict(values)}  # Keras Tuner's trial owns its values
        # All handed out: wait while trials are ongoing (one may come back
        # for a retry when its worker dies), then stop.
        if compat.ongoing_trials(self):
            return {"status": trial_module.TrialStatus.IDLE, "values": None}
        return {"status": trial_module.TrialStatus.STOPPED, "values": None}


def _values(config):
    """The hyperparameter values of a configuration (its active dimensions)."""
    return {name: value for name, value in config.items() if value is not None}


class RandomOracle(LedgerOracle, oracles.RandomSearchOracle):
    """Keras Tuner's random search with the ledger."""


class BayesianOracle(LedgerOracle, oracles.BayesianOptimizationOracle):
    """Keras Tuner's Bayesian optimization with the ledger."""


class HyperbandOracle(LedgerOracle, oracles.HyperbandOracle):
    """Keras Tuner's Hyperband with the ledger."""


TUNERS = ("grid", "random", "bayesian", "hyperband")


def build(tuner, space, metric, epochs, max_trials, recorded, todo, record, packs=None):
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
        packs: the grid only: `todo` cut into packs, one per trial (see
            `GridOracle`); None hands out one run per trial.

    Returns:
        A `LedgerOracle`, its search space declared.
    """
    if packs is not None and tuner != "grid":
        raise ValueError(f"packs are handed out by the grid tuner only, not {tuner!r}")
    common = dict(
        space=space,
        recorded=recorded,
        record=record,
        objective=keras_tuner.Objective(metric.column, metric.direction),
        seed=1,
        max_consecutive_failed_trials=10**9,
    )
    if tuner == "grid":
        oracle = GridOracle(todo=todo, packs=packs, **common)
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
