"""Every use of Keras Tuner's private API, each named once.

kreg drives Keras Tuner's oracles and its chief/worker service in ways its
public API does not cover: the ledger replaces Keras Tuner's state files,
the chief re-queues the trial of a silent worker, a trial carries a pack of
runs to a worker and their outcomes back, and workers wait for the chief a
bounded time. Each private access below is one small function or
hook; `tests/tuning/test_keras_tuner_compat.py` checks each against the
installed Keras Tuner, so a release that changes one fails there, by name.
Checked with keras-tuner 1.4.8 (setup.cfg pins keras-tuner to 1.4.x from 1.4.8).
"""

from keras_tuner.engine import base_tuner


def ongoing_trials(oracle):
    """`Oracle.ongoing_trials`: {tuner id: the trial it holds}."""
    return oracle.ongoing_trials


def tuner_ids(oracle):
    """`Oracle.tuner_ids`: the ids of the tuners that have asked for a trial."""
    return oracle.tuner_ids


def requeue(oracle, tuner_id):
    """Takes the trial held by `tuner_id` back and queues it for the next tuner
    that asks (`Oracle.ongoing_trials`, `Oracle._retry_queue`).

    Returns:
        The trial id.
    """
    trial = oracle.ongoing_trials.pop(tuner_id)
    oracle.tuner_ids.discard(tuner_id)
    oracle._retry_queue.append(trial.trial_id)
    return trial.trial_id


def attach(trial, name, text):
    """Attaches `text` to `trial` under `name`, a value outside its declared
    hyperparameters that travels with the trial between chief and workers:
    Keras Tuner sends every value of a trial, declared or not
    (`HyperParameters.to_proto` / `from_proto`), and `Oracle.end_trial` keeps
    the values of the trial a worker ends. An oracle attaches a value at
    creation by returning it among the values of `populate_space`."""
    trial.hyperparameters.values[name] = text


def attachment(trial, name):
    """The text attached to `trial` under `name` (see `attach`), or None."""
    return trial.hyperparameters.values.get(name)


def detach(trial, name):
    """Removes the text attached to `trial` under `name` and returns it (None
    if there is none)."""
    return trial.hyperparameters.values.pop(name, None)


def tried(oracle, values):
    """`Oracle._duplicate(values)`: whether a trial with `values` exists."""
    return oracle._duplicate(values)


class NoStateFiles:
    """Oracle mixin: Keras Tuner writes no oracle or trial files
    (`Oracle.save`, `Oracle._save_trial`); kreg's ledger is the state."""

    def save(self):
        """Not written: the ledger is the state."""

    def _save_trial(self, trial):
        """Not written: the ledger is the state."""


class DeclaredSpaceTuner(base_tuner.BaseTuner):
    """A tuner whose search space is declared, not discovered by building.

    Keras Tuner builds the hypermodel repeatedly to find conditional
    dimensions (`BaseTuner._populate_initial_space`); a subclass's
    `declare_space(hp)` registers every dimension at once instead.
    """

    def _populate_initial_space(self):
        hp = self.oracle.get_space()
        self.declare_space(hp)
        self.oracle.update_space(hp)

    def declare_space(self, hp):
        raise NotImplementedError


def serve(oracle, address, max_workers=4):
    """Serves `oracle` over gRPC at `address` as Keras Tuner's chief does
    (`keras_tuner.src.protos`, `keras_tuner.src.distribute.oracle_chief`).

    Returns:
        `(server, servicer)`: the started `grpc.Server` (stop it) and the
        servicer (see `search_is_over`).
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    server.add_insecure_port(address)
    server.start()
    return server, servicer


def search_is_over(servicer):
    """`OracleServicer.stop_triggered`: a tuner was told the search is over."""
    return servicer.stop_triggered


def set_client_timeout(seconds):
    """Bounds every wait of a worker for the chief to `seconds`
    (`keras_tuner.src.distribute.oracle_client.TIMEOUT`, one hour by default)."""
    from keras_tuner.src.distribute import oracle_client

    oracle_client.TIMEOUT = seconds
