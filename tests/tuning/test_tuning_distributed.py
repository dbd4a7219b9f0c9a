"""A chief and two workers on 127.0.0.1; one worker is SIGKILLed mid-run."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from study_process import TINY_STUDY
from study_process import start_study

from kreg import tuning
from kreg.tuning import distributed

# 10 epochs: a run lasts long enough (about a second) that a worker which has
# just finished one surely holds the next half a second later.
SETTINGS = dict(TINY_STUDY, epochs=10, trial_timeout=10.0, connect_timeout=120.0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tuner_id, port, directory, log):
    env = dict(os.environ, KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=str(port))
    with open(log, "w") as out:
        return start_study(directory, SETTINGS, env=env, stdout=out, stderr=subprocess.STDOUT)


def rows_by(directory, worker):
    runs = os.path.join(directory, "runs")
    found = []
    for name in os.listdir(runs) if os.path.isdir(runs) else ():
        if name.endswith(".json") and not name.startswith("."):
            with open(os.path.join(runs, name)) as f:
                row = json.load(f)
            found += [row] if row["worker"] == worker else []
    return found


def test_chief_and_two_workers_finish_the_grid_when_a_worker_dies(tmp_path):
    directory, port = str(tmp_path / "study"), free_port()
    chief = start("chief", port, directory, tmp_path / "chief.log")
    workers = [start(f"worker{i}", port, directory, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        # Once worker0 has finished a run it takes the next one: kill it while
        # it trains that one.
        deadline = time.monotonic() + 180
        while not rows_by(directory, "worker0"):
            assert time.monotonic() < deadline, "worker0 recorded no run in 180 s"
            assert chief.poll() is None, (tmp_path / "chief.log").read_text()
            time.sleep(0.05)
        time.sleep(0.5)
        workers[0].send_signal(signal.SIGKILL)
        assert chief.wait(timeout=180) == 0, (tmp_path / "chief.log").read_text()
        assert workers[1].wait(timeout=60) == 0, (tmp_path / "worker1.log").read_text()
    finally:
        for process in [chief] + workers:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert workers[0].returncode == -signal.SIGKILL
    # The chief noticed the run worker0 held when it died and re-queued it.
    assert "worker0 held run" in (tmp_path / "chief.log").read_text()
    rows = tuning.results(directory)
    points = [(r["norm"], r["order"], r["rate"], r["seed"]) for r in rows]
    assert len(points) == len(set(points)) == 8
    assert all(r["status"] == "completed" for r in rows)
    assert {r["worker"] for r in rows} == {"worker0", "worker1"}


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
