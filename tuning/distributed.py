"""Distributed studies: Keras Tuner's chief and workers, supervised by kreg.

Run the same study command on every machine with three environment variables
(Keras Tuner's): `KERASTUNER_TUNER_ID` ("chief" for the one process that holds
the oracle and writes the ledger, any other unique id such as "worker0" for
the processes that train), `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT`
(the chief's address). `commands()` writes these command lines for you
(`kreg tune ... --distributed N` prints them).

The unit of work is a Keras Tuner trial. Where a local study would pack (the
grid tuner, executor "auto" or "packed", a packable builder) a trial is a
PACK of runs: the chief cuts the configurations to train into packs as the
local packed executor does (`packing.pack_size`: what fits `memory_budget`,
at most `max_pack`), but of at most `MAX_PACK` runs, so that several workers
share a study (the default study's 105 runs make 7 packs); a worker trains
its pack as one model (`packing.PackTrainer`), or run by run where packing
does not apply, and sends the outcomes of all its runs back with the trial
(`kreg.tuning.oracles`). Otherwise (executor "sequential", the random,
Bayesian or Hyperband tuner, a builder the chief cannot pack) a trial is one
run, trained run by run.

Keras Tuner's own chief never exits when a worker dies mid-trial: the trial
stays "ongoing" forever. kreg's chief (`serve_chief`) supervises instead,
and prints each trial it hands out ("worker0 took pack 3 (4 runs)") and
each it re-queues:

- workers report when training starts, after every epoch and, within an
  epoch, about once a second; a trial (run or pack) silent for
  `trial_timeout` seconds goes back to the queue and the next free worker
  trains it from the start (the dead worker's id is forgotten; should the
  worker have been only slow, the first of the two to finish is recorded),
  so a worker killed mid-pack loses that pack's progress, nothing else;
- a worker restarted with the same `KERASTUNER_TUNER_ID` gets its unfinished
  trial back at once (Keras Tuner hands a tuner id its ongoing trial);
- once every run is recorded, the chief waits at most `grace` seconds for the
  live workers to hear that the search is over, then exits;
- workers wait at most `connect_timeout` seconds for an answer of the chief.

The ledger is written by the chief only, one row per run through the study's
record path with the worker's tuner id, so the workers need no shared disk
(they keep no pack checkpoints either).
"""

import dataclasses
import os
import shlex
import time

from kreg.tuning import keras_tuner_compat as compat
from kreg.tuning import packing

# The most runs of one pack a chief hands out.
MAX_PACK = 16


def role():
    """"local", "chief" or "worker", from Keras Tuner's environment variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "local"
    for name in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        if name not in os.environ:
            raise ValueError(f"KERASTUNER_ORACLE_IP is set, so {name} must be set too (distributed mode)")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def serve_chief(oracle, trial_timeout, grace=30.0, poll=0.5):
    """Serves `oracle` to the workers until every run is recorded.

    Args:
        oracle: a `kreg.tuning.oracles.LedgerOracle`.
        trial_timeout: seconds without a sign of life after which a trial
            held by a worker is assumed lost (its worker died) and re-queued.
        grace: seconds to wait, once the search is over, for live workers to
            be told so before the chief exits anyway.
        poll: seconds between two supervision rounds.
    """
    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    oracle.log_handouts = True  # which worker holds what, in the chief's output
    server, servicer = compat.serve(oracle, address)
    over_since = None
    try:
        while True:
            time.sleep(poll)
            oracle.requeue_stale(trial_timeout)
            if not (compat.search_is_over(servicer) and not compat.ongoing_trials(oracle)):
                continue
            over_since = over_since or time.monotonic()
            if not compat.tuner_ids(oracle) or time.monotonic() - over_since > grace:
                return
    finally:
        server.stop(grace=1)


@dataclasses.dataclass
class ChiefExecutor:
    """The chief: serves the search to the workers and records their runs.

    Attributes:
        make_oracle: `make_oracle(todo, record, packs=None)` -> the study's
            oracle (`kreg.tuning.oracles.build`).
        trial_timeout: see `serve_chief`.
        progress: the study's `kreg.tuning.progress.Progress`.
        trainer: a `packing.PackTrainer` to size the packs with (its
            `plan`), or None to hand out one run per trial.
        memory_budget: bytes one pack may use.
        max_pack: the most runs of one pack (and never more than `MAX_PACK`).
    """

    make_oracle: object
    trial_timeout: float
    progress: object
    trainer: object = None
    memory_budget: float = packing.DEFAULT_MEMORY_BUDGET
    max_pack: int = MAX_PACK

    def run(self, todo, record):
        serve_chief(self.make_oracle(todo, record, packs=self.packs(todo)), self.trial_timeout)

    def packs(self, todo):
        """`todo` cut into the packs to hand out, or None for one run per trial.

        Returns:
            A list of lists of configurations (see `packing.plan_packs`), or
            None without a trainer, with nothing to do, or when the builder's
            models cannot be packed (said once).
        """
        if self.trainer is None or not todo:
            return None
        try:
            return self.trainer.plan(todo, self.memory_budget, min(self.max_pack, MAX_PACK))
        except packing.NotPackableError as e:
            self.progress.say(f"kreg: handing out run by run: packing does not apply: {e}")
            return None


class WorkerExecutor:
    """A worker: trains what the chief hands out, packs or single runs.

    Args:
        trials: a `kreg.tuning.trials.TrialExecutor` with a `trainer` for the
            pack trials (its oracle becomes a client of the chief's).
        connect_timeout: the most seconds to wait for any answer of the chief.
    """

    def __init__(self, trials, connect_timeout):
        self.trials = trials
        self.connect_timeout = connect_timeout

    def run(self, todo, record):
        compat.set_client_timeout(self.connect_timeout)
        self.trials.run(todo, record)


def commands(arguments, workers, ip="127.0.0.1", port=8000, program="kreg tune"):
    """Command lines for one chief and `workers` workers.

    Args:
        arguments: the study's command-line arguments (a list of strings),
            identical on every machine.
        workers: number of workers.
        ip: the chief machine's address, reachable from the workers.
        port: the chief's port.
        program: the command that runs a study.

    Returns:
        A list of shell command lines, the chief's first.

    Example:

    ```python
    for line in commands(["mlp", "digits", "--out", "runs/x"], workers=2, ip="10.0.0.5"):
        print(line)
    ```
    """
    tail = " ".join(shlex.quote(a) for a in arguments)
    ids = ["chief"] + [f"worker{i}" for i in range(workers)]
    return [
        f"KERASTUNER_TUNER_ID={tuner_id} KERASTUNER_ORACLE_IP={ip} KERASTUNER_ORACLE_PORT={port} {program} {tail}"
        for tuner_id in ids
    ]
