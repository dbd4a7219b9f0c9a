"""Distributed studies: Keras Tuner's chief and workers, supervised by kreg.

Run the same study command on every machine with three environment variables
(Keras Tuner's): `KERASTUNER_TUNER_ID` ("chief" for the one process that holds
the oracle and writes the ledger, any other unique id such as "worker0" for
the processes that train), `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT`
(the chief's address). `commands()` writes these command lines for you
(`kreg tune ... --distributed N` prints them).

Keras Tuner's own chief never exits when a worker dies mid-run: the run stays
"ongoing" forever. kreg's chief (`serve_chief`) supervises instead:

- workers report after every epoch; a run silent for `trial_timeout`
  seconds goes back to the queue and the next free worker trains it (the
  dead worker's id is forgotten; should the worker have been only slow, the
  first of the two to finish is recorded);
- a worker restarted with the same `KERASTUNER_TUNER_ID` gets its unfinished
  run back at once (Keras Tuner hands a tuner id its ongoing run);
- once every run is recorded, the chief waits at most `grace` seconds for the
  live workers to hear that the search is over, then exits;
- workers wait at most `connect_timeout` seconds for an answer of the chief.

The ledger is written by the chief only, so the workers need no shared disk.
"""

import os
import shlex
import time

from kreg.tuning import keras_tuner_compat as compat


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
        trial_timeout: seconds without a sign of life after which a run held
            by a worker is assumed lost (its worker died) and re-queued.
        grace: seconds to wait, once the search is over, for live workers to
            be told so before the chief exits anyway.
        poll: seconds between two supervision rounds.
    """
    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
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


class ChiefExecutor:
    """The chief: serves the search to the workers and records their runs.

    Args:
        make_oracle: `make_oracle(todo, record)` -> the study's oracle.
        trial_timeout: see `serve_chief`.
    """

    def __init__(self, make_oracle, trial_timeout):
        self.make_oracle = make_oracle
        self.trial_timeout = trial_timeout

    def run(self, todo, record):
        serve_chief(self.make_oracle(todo, record), self.trial_timeout)


class WorkerExecutor:
    """A worker: trains the runs the chief hands out, run by run.

    Args:
        trials: a `kreg.tuning.trials.TrialExecutor` (its oracle becomes a
            client of the chief's).
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
