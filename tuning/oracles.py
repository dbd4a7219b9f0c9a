"""Keras Tuner oracles that record every run in the ledger and replay it.

`LedgerOracle` is mixed into each Keras Tuner oracle (grid, random, Bayesian,
Hyperband). It changes three things:

- end of a run: the run is recorded as one row through `ledger.record_run`
  (on the chief in distributed mode, so workers need no shared disk);
- start of a run: a configuration that already has a row is not sent to a
  tuner; the oracle answers it from the row and moves on. A study restarted
  on the same directory therefore replays the search (the oracles are seeded)
  and trains only what is missing: no completed run is ever trained twice;
- Keras Tuner's own state files are not written: the ledger is the state.

`requeue_stale` is the supervision of distributed mode: a run whose tuner
gave no sign of life for `trial_timeout` seconds (its worker died) goes back
to the queue. Tuners send a heartbeat (`HEARTBEAT`) after every epoch.
"""

import time

import keras_tuner
from keras_tuner import oracles
from keras_tuner.engine import trial as trial_module

from kreg.tuning import ledger

RUNNING = trial_module.TrialStatus.RUNNING
COMPLETED = trial_module.TrialStatus.COMPLETED
FAILED = trial_module.TrialStatus.FAILED
# A metric name tuners report after each epoch: a sign of life, not a result.
HEARTBEAT = "kreg/heartbeat"


def config_of(hyperparameters):
    """The configuration dict of a trial: norm, order (None when inactive),
    rate, seed, then any other value (e.g. Hyperband's "tuner/epochs", which
    is not part of the search space)."""
    space = {hp.name for hp in hyperparameters.space}
    values = {
        name: value
        for name, value in hyperparameters.values.items()
        if name not in space or hyperparameters.is_active(name)
    }
    config = {name: values.pop(name, None) for name in ledger.CONFIG_COLUMNS}
    config.update(values)
    return config


class Progress:
    """One line per finished run: runs done / total, the run, its metric, ETA.

    Args:
        total: number of runs of the study (None when unknown, e.g. Hyperband).
        done: runs already recorded when this session started.
        quiet: print nothing.
        metric_column: the row column shown on each line.
    """

    def __init__(self, total, done=0, quiet=False, metric_column="final_val_loss"):
        self.total = total
        self.done = done
        self.quiet = quiet
        self.metric_column = metric_column
        self.start = time.monotonic()
        self.new = 0
        if done and not quiet:
            print(f"resuming: {done}/{total or '?'} runs already recorded", flush=True)

    def update(self, row):
        self.done += 1
        self.new += 1
        if self.quiet:
            return
        elapsed = time.monotonic() - self.start
        eta = "?"
        if self.total is not None:
            seconds = elapsed / self.new * max(self.total - self.done, 0)
            eta = f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
        order = f" order={row['order']}" if row["order"] else ""
        value = row.get(self.metric_column)
        measured = f"{self.metric_column}={value:.4f}" if value is not None else row["status"]
        wall = f"{row['wall_time']:.1f}s" if row["wall_time"] is not None else "-"
        print(
            f"[{self.done}/{self.total or '?'}] norm={row['norm']}{order} rate={row['rate']:g} "
            f"seed={row['seed']}: {measured} ({wall}) ETA {eta}",
            flush=True,
        )


class LedgerOracle:
    """Mixin: ledger recording, replay of recorded runs, stale-run requeueing.

    Args:
        directory: the study directory (rows go to `directory/runs/`).
        recorded: the rows already recorded there.
        progress: a `Progress`.
        **kwargs: the Keras Tuner oracle's arguments.
    """

    def __init__(self, directory, recorded, progress, **kwargs):
        super().__init__(**kwargs)
        self.ledger_dir = directory
        self.progress = progress
        self.recorded = {row["key"]: row for row in recorded}
        self.last_seen = {}  # trial_id -> time of the last sign of life
        self.holders = {}  # trial_id -> the tuner the run was last handed to
        self.verbose = 0  # Keras Tuner's own display; `progress` prints instead.

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        while True:
            trial = super().create_trial(tuner_id)
            if trial.status != RUNNING:
                return trial
            row = self.recorded.get(ledger.run_key(config_of(trial.hyperparameters)))
            if row is None:
                self.last_seen[trial.trial_id] = time.monotonic()
                self.holders[trial.trial_id] = tuner_id
                return trial
            self._replay(trial, row)

    def _replay(self, trial, row):
        """Ends `trial` with the outcome recorded in `row`, without training."""
        if row["status"] == "completed":
            metrics = {name: row[name] for name in ledger.METRIC_COLUMNS if row[name] is not None}
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
        config = config_of(ended.hyperparameters)
        key = ledger.run_key(config)
        if key in self.recorded or ended.status not in (COMPLETED, FAILED):
            return
        metrics = {}
        if ended.status == COMPLETED:
            metrics = {name: ended.metrics.get_last_value(name) for name in ended.metrics.metrics}
        message = ""
        if status == FAILED:
            lines = (trial.message or "run failed").strip().splitlines()
            message = lines[-1]
        row = ledger.record_run(
            self.ledger_dir,
            config,
            metrics,
            "completed" if ended.status == COMPLETED else "failed",
            message=message,
            worker=worker,
        )
        self.recorded[key] = row
        self.progress.update(row)

    @keras_tuner.synchronized
    def requeue_stale(self, trial_timeout):
        """Sends back to the queue every run silent for `trial_timeout` s.

        Returns:
            The list of `(tuner_id, trial_id)` that were re-queued.
        """
        now = time.monotonic()
        stale = [
            (tuner_id, trial.trial_id)
            for tuner_id, trial in self.ongoing_trials.items()
            if now - self.last_seen.get(trial.trial_id, now) > trial_timeout
        ]
        for tuner_id, trial_id in stale:
            del self.ongoing_trials[tuner_id]
            self.tuner_ids.discard(tuner_id)
            self._retry_queue.append(trial_id)
            print(f"{tuner_id} held run {trial_id} silently for {trial_timeout:g}s: re-queued", flush=True)
        return stale

    def save(self):
        """Not written: the ledger is the state (see the module docstring)."""

    def _save_trial(self, trial):
        """Not written: the ledger is the state (see the module docstring)."""


class GridOracle(LedgerOracle, keras_tuner.Oracle):
    """Every point of the grid once, in a fixed order, to as many tuners as ask.

    Keras Tuner's `GridSearchOracle` derives each new trial from a finished
    one, so with several workers all but one mostly wait; this oracle
    enumerates the grid (conditional dimensions only where active) and hands
    out the first point not tried yet.
    """

    def grid(self):
        """Every point of the search space as a dict of active values."""
        probe = self.hyperparameters.copy()
        points = [{}]
        for hp in self.hyperparameters.space:
            grown = []
            for values in points:
                probe.values = values
                if probe.is_active(hp):
                    grown.extend(dict(values, **{hp.name: value}) for value in hp.values)
                else:
                    grown.append(values)
            points = grown
        return points

    def populate_space(self, trial_id):
        for values in self.grid():
            if not self._duplicate(values):
                return {"status": RUNNING, "values": values}
        # All handed out: wait while runs are ongoing (one may come back for
        # a retry when its worker dies), then stop.
        if self.ongoing_trials:
            return {"status": trial_module.TrialStatus.IDLE, "values": None}
        return {"status": trial_module.TrialStatus.STOPPED, "values": None}


class RandomOracle(LedgerOracle, oracles.RandomSearchOracle):
    """Keras Tuner's random search with the ledger."""


class BayesianOracle(LedgerOracle, oracles.BayesianOptimizationOracle):
    """Keras Tuner's Bayesian optimization with the ledger."""


class HyperbandOracle(LedgerOracle, oracles.HyperbandOracle):
    """Keras Tuner's Hyperband with the ledger."""
