"""Every private Keras Tuner access kreg makes, checked against the installed
Keras Tuner: a release that changes one fails here, by name."""

import socket

import keras_tuner
import pytest

from kreg.tuning import keras_tuner_compat as compat


class Oracle(compat.NoStateFiles, keras_tuner.Oracle):
    def populate_space(self, trial_id):
        if self.trials:  # one trial, then the search is over
            return {"status": "STOPPED", "values": None}
        return {"status": "RUNNING", "values": {"x": len(self.trials)}}


def make_oracle(tmp_path, oracle_class=Oracle):
    oracle = oracle_class(objective=keras_tuner.Objective("loss", "min"), max_trials=10)
    oracle.verbose = 0
    hp = oracle.get_space()
    hp.Int("x", 0, 9)
    oracle.update_space(hp)
    return oracle


def test_ongoing_trials_tuner_ids_and_requeue(tmp_path):
    oracle = make_oracle(tmp_path)
    trial = oracle.create_trial("worker0")
    assert compat.ongoing_trials(oracle) == {"worker0": trial}
    assert compat.tuner_ids(oracle) == {"worker0"}
    assert compat.requeue(oracle, "worker0") == trial.trial_id
    assert compat.ongoing_trials(oracle) == {} and compat.tuner_ids(oracle) == set()
    # The next tuner that asks gets the re-queued trial, not a new one.
    assert oracle.create_trial("worker1").trial_id == trial.trial_id


def test_tried_finds_existing_values(tmp_path):
    oracle = make_oracle(tmp_path)
    trial = oracle.create_trial("a")
    assert compat.tried(oracle, dict(trial.hyperparameters.values))
    assert not compat.tried(oracle, {"x": 7})


def test_no_state_files_are_written(tmp_path):
    oracle = make_oracle(tmp_path)
    oracle._set_project_dir(str(tmp_path), "p")
    trial = oracle.create_trial("a")
    oracle.update_trial(trial.trial_id, {"loss": 1.0})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == []


def test_a_declared_space_tuner_declares_without_building(tmp_path):
    built = []

    class HyperModel(keras_tuner.HyperModel):
        def build(self, hp):
            built.append(hp)

    class Tuner(compat.DeclaredSpaceTuner):
        def declare_space(self, hp):
            hp.Choice("norm", ["none", "batch"])
            with hp.conditional_scope("norm", ["batch"]):
                hp.Choice("order", ["norm-act-drop"])

    tuner = Tuner(make_oracle(tmp_path), HyperModel(), directory=str(tmp_path), project_name="p")
    names = {hp.name for hp in tuner.oracle.get_space().space}
    assert {"norm", "order"} <= names and built == []


def test_serve_answers_a_client_and_reports_the_end(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    oracle = make_oracle(tmp_path)
    server, servicer = compat.serve(oracle, f"127.0.0.1:{port}")
    try:
        assert compat.search_is_over(servicer) is False
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
        monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker0")
        from keras_tuner.src.distribute import oracle_client

        compat.set_client_timeout(5)
        assert oracle_client.TIMEOUT == 5
        client = oracle_client.OracleClient(oracle)
        trial = client.create_trial("worker0")
        assert trial.status == "RUNNING" and compat.ongoing_trials(oracle)["worker0"].trial_id == trial.trial_id
        client.end_trial(trial)
        assert client.create_trial("worker0").status == "STOPPED"
        assert compat.search_is_over(servicer) is True
    finally:
        server.stop(grace=0)
        compat.set_client_timeout(60 * 60)


def test_attachments_travel_with_a_trial_between_chief_and_worker(tmp_path, monkeypatch):
    ended = []

    class AttachingOracle(Oracle):
        def populate_space(self, trial_id):
            response = super().populate_space(trial_id)
            if response["values"] is not None:
                response["values"]["note"] = "to the worker"
            return response

        def end_trial(self, trial):
            ended.append(compat.detach(trial, "reply"))
            super().end_trial(trial)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    oracle = make_oracle(tmp_path, AttachingOracle)
    server, _ = compat.serve(oracle, f"127.0.0.1:{port}")
    try:
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
        monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker0")
        from keras_tuner.src.distribute import oracle_client

        client = oracle_client.OracleClient(oracle)
        trial = client.create_trial("worker0")
        assert compat.attachment(trial, "note") == "to the worker"
        assert compat.attachment(trial, "reply") is None
        compat.attach(trial, "reply", '{"exact": 0.1234567890123}')
        trial.status = "COMPLETED"
        client.update_trial(trial.trial_id, {"loss": 1.0})
        client.end_trial(trial)
        assert ended == ['{"exact": 0.1234567890123}']
        # Detached before Keras Tuner recorded the values: the chief's trial
        # holds the values it handed out.
        stored = oracle.trials[trial.trial_id]
        assert compat.attachment(stored, "reply") is None and compat.attachment(stored, "note") == "to the worker"
        assert compat.tried(oracle, {"x": 0, "note": "to the worker"})
    finally:
        server.stop(grace=0)


def test_the_keras_tuner_version_is_the_one_checked():
    major, minor, patch = (int(p) for p in keras_tuner.__version__.split(".")[:3])
    assert (major, minor) == (1, 4) and patch >= 8, keras_tuner.__version__
    with pytest.raises(NotImplementedError):
        compat.DeclaredSpaceTuner.declare_space(None, None)
