"""The ledger oracle's bookkeeping, driven directly (no training)."""

import keras_tuner
import pytest

from kreg import tuning
from kreg.tuning import oracles


def make_oracle(directory, rows=(), **hypermodel_kwargs):
    hypermodel = tuning.RegularizationHyperModel("mlp", input_shape=(4,), num_classes=2, **hypermodel_kwargs)
    space = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(space)
    objective = keras_tuner.Objective("final_val_loss", "min")
    progress = oracles.Progress(hypermodel.grid_size(), quiet=True)
    oracle = oracles.GridOracle(directory=directory, recorded=list(rows), progress=progress, objective=objective, hyperparameters=space)
    return hypermodel, oracle


def finish(oracle, trial, value=0.5):
    oracle.update_trial(trial.trial_id, {"final_val_loss": value, "epochs": 1})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def test_grid_enumerates_every_point_with_order_only_under_a_norm(tmp_path):
    hypermodel, oracle = make_oracle(str(tmp_path), rates=(0.0, 0.5), seeds=2, orders=("norm-act-drop", "act-norm-drop"))
    points = oracle.grid()
    assert len(points) == hypermodel.grid_size() == 2 * 2 + 2 * 2 * 2
    assert all(("order" in p) == (p["norm"] != "none") for p in points)
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)


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


def test_recorded_runs_are_answered_from_the_ledger(tmp_path):
    config = {"norm": "none", "order": None, "rate": 0.0, "seed": 0}
    row = tuning.record_run(str(tmp_path), config, {"final_val_loss": 0.25, "epochs": 1}, "completed")
    _, oracle = make_oracle(str(tmp_path), [row], rates=(0.0, 0.5), seeds=1, norms=(None,))
    trial = oracle.create_trial("a")
    # The recorded point was replayed (completed with its recorded score), not handed out.
    assert trial.hyperparameters.values["rate"] == 0.5
    replayed = [t for t in oracle.trials.values() if t.trial_id != trial.trial_id]
    assert [t.status for t in replayed] == ["COMPLETED"]
    assert replayed[0].score == pytest.approx(0.25)
