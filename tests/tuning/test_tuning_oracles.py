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


def make_packed_oracle(directory, size=2, rows=(), **space_kwargs):
    space = tuning.SearchSpace(**space_kwargs)
    keys = {row["key"] for row in rows}
    todo = [config for config in space.configs() if space.key(config) not in keys]
    packs = [todo[i : i + size] for i in range(0, len(todo), size)]

    def record(config, outcome, worker):
        return ledger.record_run(directory, config, outcome, worker)

    oracle = oracles.build("grid", space, schema.metric("val_loss"), 1, None, list(rows), todo, record, packs=packs)
    return packs, oracle


def finish_pack(oracle, trial, losses):
    """Ends a pack trial as a worker does: its runs' outcomes attached, the
    trial answered with its first completed run."""
    outcomes = [
        schema.Outcome.failed("the loss became NaN or infinite in epoch 1") if loss is None else schema.Outcome("completed", {"final_val_loss": loss, "epochs": 1})
        for loss in losses
    ]
    oracles.attach_outcomes(trial, outcomes)
    oracle.update_trial(trial.trial_id, oracles.score_metrics(outcomes))
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def test_the_grid_hands_out_packs_and_records_each_of_their_runs(tmp_path):
    packs, oracle = make_packed_oracle(str(tmp_path), rates=(0.0, 0.5), seeds=2, norms=(None,))
    first, second = oracle.create_trial("w0"), oracle.create_trial("w1")
    assert [oracles.pack_of(first), oracles.pack_of(second)] == packs
    assert oracle.create_trial("w2").status == "IDLE"  # both packs out, none finished
    finish_pack(oracle, first, [0.25, None])
    finish_pack(oracle, second, [0.5, 0.75])
    assert oracle.create_trial("w0").status == "STOPPED"
    rows = {(r["rate"], r["seed"]): r for r in tuning.results(str(tmp_path))}
    assert len(rows) == 4
    # The exact values the worker attached, its failure message, and who trained each run.
    assert rows[(0.0, 0)]["final_val_loss"] == 0.25 and rows[(0.5, 1)]["final_val_loss"] == 0.75
    assert rows[(0.5, 0)]["status"] == "failed" and rows[(0.5, 0)]["message"] == "the loss became NaN or infinite in epoch 1"
    assert {key: r["worker"] for key, r in rows.items()} == {(0.0, 0): "w0", (0.5, 0): "w0", (0.0, 1): "w1", (0.5, 1): "w1"}


def test_a_silent_pack_is_requeued_and_a_restarted_worker_gets_its_pack_back(tmp_path, monkeypatch, capsys):
    packs, oracle = make_packed_oracle(str(tmp_path), rates=(0.0, 0.5), seeds=2, norms=(None,))
    clock = [100.0]
    monkeypatch.setattr(oracles.time, "monotonic", lambda: clock[0])
    held = oracle.create_trial("dead")
    # Restarted with the same id, a worker gets the pack it held.
    assert oracle.create_trial("dead").trial_id == held.trial_id
    finish_pack(oracle, oracle.create_trial("other"), [0.5, 0.5])
    clock[0] += 61
    assert oracle.requeue_stale(60) == [("dead", held.trial_id)]
    assert f"dead held pack {held.trial_id} (2 runs) silently for 60s: re-queued" in capsys.readouterr().out
    again = oracle.create_trial("other")
    assert again.trial_id == held.trial_id and oracles.pack_of(again) == packs[0]
    finish_pack(oracle, again, [0.25, 0.25])
    rows = tuning.results(str(tmp_path))
    assert len(rows) == 4 and {r["worker"] for r in rows} == {"other"}


def test_a_chief_logs_each_pack_it_hands_out_and_a_local_oracle_does_not(tmp_path, capsys):
    _, oracle = make_packed_oracle(str(tmp_path), rates=(0.0, 0.5), seeds=2, norms=(None,))
    first = oracle.create_trial("worker0")
    assert capsys.readouterr().out == ""  # a local study's oracle says nothing
    oracle.log_handouts = True  # as `distributed.serve_chief` sets it
    second = oracle.create_trial("worker1")
    assert capsys.readouterr().out == f"worker1 took pack {second.trial_id} (2 runs)\n"
    assert first.trial_id != second.trial_id


def test_a_pack_its_slow_worker_finished_after_all_is_not_trained_again(tmp_path, monkeypatch):
    _, oracle = make_packed_oracle(str(tmp_path), rates=(0.0, 0.5), seeds=1, norms=(None,))
    clock = [100.0]
    monkeypatch.setattr(oracles.time, "monotonic", lambda: clock[0])
    slow = oracle.create_trial("slow")
    clock[0] += 61
    oracle.requeue_stale(60)
    finish_pack(oracle, slow, [0.25, 0.5])  # the slow worker ends it after all
    # The re-queued pack is answered from its rows: nothing left to train.
    assert oracle.create_trial("other").status == "STOPPED"
    assert [r["worker"] for r in tuning.results(str(tmp_path))] == ["slow", "slow"]


def test_a_pack_ended_without_its_outcomes_is_refused(tmp_path):
    _, oracle = make_packed_oracle(str(tmp_path), rates=(0.0, 0.5), seeds=1, norms=(None,))
    trial = oracle.create_trial("w0")
    oracle.update_trial(trial.trial_id, {"final_val_loss": 0.5})
    trial.status = "COMPLETED"
    with pytest.raises(ValueError, match="2 runs ended with 0 outcomes"):
        oracle.end_trial(trial)


def test_only_the_grid_hands_out_packs():
    space = tuning.SearchSpace(rates=(0.0,), seeds=1, norms=(None,))
    with pytest.raises(ValueError, match="grid tuner only, not 'random'"):
        oracles.build("random", space, schema.metric("val_loss"), 1, 1, [], space.configs(), print, packs=[space.configs()])
