"""Distributed studies: a chief and two workers on 127.0.0.1, one SIGKILLed
mid-pack; the packs a chief plans; a worker that cannot pack."""

import io
import json
import os
import signal
import socket
import subprocess
import time

import keras
import pytest

from study_process import TINY_STUDY
from study_process import start_study

from kreg import tuning
from kreg.tuning import distributed
from kreg.tuning import ledger
from kreg.tuning import oracles
from kreg.tuning import packing
from kreg.tuning import progress as progress_module
from kreg.tuning import schema
from kreg.tuning import trials

# The tiny grid with 3 seeds: 12 runs in 3 packs of 4 (a seed's runs each, one
# layout, so one compiled pack model serves a process's packs), 10 epochs: a
# pack lasts long enough (seconds) that a worker the chief has just handed a
# pack still trains it when the test sees the chief's line.
SETTINGS = dict(TINY_STUDY, seeds=3, epochs=10, max_pack=4, trial_timeout=10.0, connect_timeout=120.0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tuner_id, port, directory, log):
    env = dict(os.environ, KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=str(port))
    with open(log, "w") as out:
        return start_study(directory, SETTINGS, env=env, stdout=out, stderr=subprocess.STDOUT)


def handed_out(log, worker):
    """How many packs the chief's log says it handed to `worker`."""
    lines = log.read_text().splitlines() if log.exists() else []
    return sum(line.startswith(f"{worker} took pack ") for line in lines)


def rows_by(directory, worker):
    runs = os.path.join(directory, "runs")
    found = []
    for name in os.listdir(runs) if os.path.isdir(runs) else ():
        if name.endswith(".json") and not name.startswith("."):
            with open(os.path.join(runs, name)) as f:
                row = json.load(f)
            found += [row] if row["worker"] == worker else []
    return found


def test_chief_and_two_workers_finish_the_grid_in_packs_when_a_worker_dies(tmp_path):
    directory, port = str(tmp_path / "study"), free_port()
    chief = start("chief", port, directory, tmp_path / "chief.log")
    workers = {name: start(name, port, directory, tmp_path / f"{name}.log") for name in ("worker0", "worker1")}
    try:
        # The first worker the chief hands a second pack (it has finished
        # its first): kill it while it trains that one.
        deadline = time.monotonic() + 180
        while not (second := [name for name in workers if handed_out(tmp_path / "chief.log", name) >= 2]):
            assert time.monotonic() < deadline, "no worker took a second pack in 180 s"
            assert chief.poll() is None, (tmp_path / "chief.log").read_text()
            time.sleep(0.05)
        dead = second[0]
        (alive,) = set(workers) - {dead}
        workers[dead].send_signal(signal.SIGKILL)
        assert len(rows_by(directory, dead)) == 4  # its first pack, recorded
        # The reference, trained while the chief waits out the dead worker's
        # silence: a local packed study of the same grid.
        reference = {r["key"]: r for r in tuning.Study(directory=str(tmp_path / "local"), **SETTINGS).run()}
        assert chief.wait(timeout=180) == 0, (tmp_path / "chief.log").read_text()
        assert workers[alive].wait(timeout=60) == 0, (tmp_path / f"{alive}.log").read_text()
    finally:
        for process in [chief, *workers.values()]:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert workers[dead].returncode == -signal.SIGKILL
    # The chief noticed the pack the dead worker held and re-queued it; the
    # live worker took it.
    log = (tmp_path / "chief.log").read_text()
    assert f"{dead} held pack" in log
    assert handed_out(tmp_path / "chief.log", dead) == 2
    assert handed_out(tmp_path / "chief.log", alive) == 2
    rows = tuning.results(directory)
    points = [(r["norm"], r["order"], r["rate"], r["seed"]) for r in rows]
    assert len(points) == len(set(points)) == 12
    assert all(r["status"] == "completed" for r in rows)
    # Whole packs of 4 from both workers.
    assert all(len(rows_by(directory, name)) % 4 == 0 for name in workers)
    assert {r["worker"] for r in rows} == set(workers)
    # The rows of the local packed study, the re-queued pack's included.
    assert set(reference) == {r["key"] for r in rows}
    for row in rows:
        for name in schema.MEASURED_COLUMNS:
            if name != "wall_time":
                assert row[name] == pytest.approx(reference[row["key"]][name], abs=1e-5), (name, row, reference[row["key"]])


def chief_for(study, **kwargs):
    trainer = packing.PackTrainer(study.hypermodel, study.data, study.epochs, study.batch_size)
    said = io.StringIO()
    progress = progress_module.Progress(len(study.space), stream=said)
    return distributed.ChiefExecutor(None, 10.0, progress, trainer, **kwargs), said


def test_the_chief_plans_packs_of_at_most_max_pack_runs(tmp_path):
    # 36 runs: the packed executor's size (the memory budget, max_pack 64)
    # capped at MAX_PACK, so that several workers share them.
    study = tuning.Study(directory=str(tmp_path / "s"), **dict(TINY_STUDY, rates=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5), seeds=3, max_pack=64))
    todo = study.space.configs()
    chief, _ = chief_for(study, max_pack=64)
    packs = chief.packs(todo)
    assert len(packs) > 1 and max(len(pack) for pack in packs) <= distributed.MAX_PACK
    assert [config for pack in packs for config in pack] == todo
    assert [len(pack) for pack in chief_for(study, max_pack=4)[0].packs(todo)] == [4] * 9
    assert chief.packs([]) is None


def test_a_chief_that_cannot_pack_says_so_and_hands_out_single_runs(tmp_path):
    def regularized(input_shape, num_classes, rate, seed, **overrides):
        inputs = keras.Input(input_shape)
        x = keras.layers.Dropout(rate, seed=seed)(inputs)
        return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax", kernel_regularizer="l2")(x))

    study = tuning.Study(directory=str(tmp_path / "s"), **dict(TINY_STUDY, model=regularized, norms=(None,)))
    chief, said = chief_for(study)
    assert chief.packs(study.space.configs()) is None
    assert said.getvalue().startswith("kreg: handing out run by run: packing does not apply: the model of")


def test_a_worker_trains_a_pack_run_by_run_where_packing_does_not_apply(tmp_path):
    # The chief packs (its builds pass), the worker cannot compile the pack
    # model: a gradient-norm clip would couple the branches.
    settings = dict(TINY_STUDY, norms=(None,), seeds=1, optimizer=keras.optimizers.Adam(clipnorm=1.0))
    study = tuning.Study(directory=str(tmp_path / "s"), **settings)
    todo = study.space.configs()
    chief, _ = chief_for(study)
    packs = chief.packs(todo)
    assert packs == [todo]

    def make_oracle(todo, record):
        return oracles.build("grid", study.space, study.metric, study.epochs, None, [], todo, record, packs=packs)

    said = []
    worker = trials.TrialExecutor(make_oracle, study.hypermodel, study.data, study.epochs, study.batch_size, str(tmp_path / "w"), trainer=chief.trainer, say=said.append)
    worker.run(todo, lambda config, outcome, who: ledger.record_run(str(tmp_path / "rows"), config, outcome, who))
    assert said == ["kreg: training run by run: packing does not apply: the optimizer clips gradients by clipnorm (over every branch of a pack at once)"]
    rows = tuning.results(str(tmp_path / "rows"))
    assert sorted(r["key"] for r in rows) == sorted(study.space.key(config) for config in todo)
    assert all(r["status"] == "completed" and r["worker"] == "tuner0" for r in rows)


def test_commands_for_several_machines():
    lines = distributed.commands(["mlp", "digits", "--out", "runs/x y"], workers=2, ip="10.0.0.5", port=9000)
    assert len(lines) == 3
    assert lines[0].startswith("KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_IP=10.0.0.5 KERASTUNER_ORACLE_PORT=9000 kreg tune")
    assert lines[2].startswith("KERASTUNER_TUNER_ID=worker1 ")
    assert lines[1].endswith("mlp digits --out 'runs/x y'")


def test_role_needs_every_variable(monkeypatch):
    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    assert distributed.role() == "local"
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.delenv("KERASTUNER_ORACLE_PORT", raising=False)
    with pytest.raises(ValueError, match="KERASTUNER_ORACLE_PORT must be set"):
        distributed.role()
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker3")
    assert distributed.role() == "worker"
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert distributed.role() == "chief"
