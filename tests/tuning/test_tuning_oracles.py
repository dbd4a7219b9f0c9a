"""The ledger oracle's bookkeeping, driven directly (no training)."""

import pytest

from kreg import tuning
from kreg.tuning import ledger
from kreg.tuning import oracles
from kreg.tuning import schema


def make_oracle(directory, rows=(), **space_kwargs):
    space = tuning.SearchSpace(**space_kwargs)
    keys = {row["key"] for row in rows}
    todo = [config for config in space.configs() if space.key(config) not in keys]

    def record(config, outcome, worker):
        return ledger.record_run(directory, config, outcome, worker)

    oracle = oracles.build("grid", space, schema.metric("val_loss"), 1, None, list(rows), todo, record)
    return space, oracle


def finish(oracle, trial, value=0.5):
    oracle.update_trial(trial.trial_id, {"final_val_loss": value, "epochs": 1})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def test_the_grid_hands_out_the_space_in_its_order(tmp_path):
    space, oracle = make_oracle(str(tmp_path), rates=(0.0, 0.5), seeds=2, orders=("norm-act-drop", "act-norm-drop"))
    handed = [space.config_of(oracle.create_trial(f"t{i}").hyperparameters) for i in range(len(space))]
    assert handed == space.configs()
    assert oracle.create_trial("t99").status == "IDLE"  # all out, none finished


def test_every_point_is_handed_out_once_then_the_search_stops(tmp_path):
    _, oracle = make_oracle(str(tmp_path), rates=(0.0, 0.5), seeds=1, orders=("norm-act-drop",))
    first, second = oracle.create_trial("a"), oracle.create_trial("b")
    assert first.hyperparameters.values != second.hyperparameters.values
    # Two runs are out: tuner "a" gets its own run back (a restarted worker).
    assert oracle.create_trial("a").trial_id == first.trial_id
    finish(oracle, first)
    finish(oracle, second)
    for _ in range(2):
        finish(oracle, oracle.create_trial("a"))
    # All four done: the recorded rows are the grid, and the search stops.
    assert oracle.create_trial("a").status == "STOPPED"
    assert len(tuning.results(str(tmp_path))) == 4


def test_a_silent_run_is_requeued_and_a_heartbeat_keeps_it(tmp_path, monkeypatch):
    _, oracle = make_oracle(str(tmp_path), rates=(0.0,), seeds=1, norms=(None,))
    clock = [100.0]
    monkeypatch.setattr(oracles.time, "monotonic", lambda: clock[0])
    trial = oracle.create_trial("dead")
    clock[0] += 50
    oracle.update_trial(trial.trial_id, {oracles.HEARTBEAT: 0})  # alive at t=150
    clock[0] += 50
    assert oracle.requeue_stale(60) == []
    # Only point handed out, so the other tuner waits.
    assert oracle.create_trial("other").status == "IDLE"
    clock[0] += 11
    assert oracle.requeue_stale(60) == [("dead", trial.trial_id)]
    again = oracle.create_trial("other")
    assert again.trial_id == trial.trial_id
    finish(oracle, again)
    rows = tuning.results(str(tmp_path))
    assert [r["worker"] for r in rows] == ["other"]


def test_recorded_runs_are_never_handed_out_again(tmp_path):
    config = {"norm": "none", "order": None, "rate": 0.0, "seed": 0}
    row = tuning.record_run(str(tmp_path), config, schema.Outcome("completed", {"final_val_loss": 0.25, "epochs": 1}))
    _, oracle = make_oracle(str(tmp_path), [row], rates=(0.0, 0.5), seeds=1, norms=(None,))
    assert oracle.create_trial("a").hyperparameters.values["rate"] == 0.5
    assert oracle.create_trial("b").status == "IDLE"


def test_a_search_replays_its_recorded_runs_from_the_ledger(tmp_path):
    space = tuning.SearchSpace(rates=(0.0, 0.5), seeds=1, norms=(None,))
    config = {"norm": "none", "order": None, "rate": 0.0, "seed": 0}
    row = tuning.record_run(str(tmp_path), config, schema.Outcome("completed", {"final_val_loss": 0.25, "epochs": 1}))
    recorded = []
    oracle = oracles.build("random", space, schema.metric("val_loss"), 1, 2, [row], [], lambda *run: recorded.append(run))
    trained = []
    while (trial := oracle.create_trial("a")).status == "RUNNING":
        trained.append(space.config_of(trial.hyperparameters))
        finish(oracle, trial, value=0.75)
    # Both points were proposed; the recorded one was answered from its row
    # (completed with its recorded score), only the other was trained.
    assert trained == [dict(config, rate=0.5)]
    scores = {space.config_of(t.hyperparameters)["rate"]: t.score for t in oracle.trials.values()}
    assert scores == {0.0: pytest.approx(0.25), 0.5: pytest.approx(0.75)}
    assert [run[0]["rate"] for run in recorded] == [0.5]
