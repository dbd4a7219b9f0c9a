"""Resume after SIGKILL: a real study process is killed once rows exist."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from study_process import TINY_STUDY
from study_process import start_study

from kreg import tuning

def wait_for_rows(directory, process, count, timeout=120):
    runs = os.path.join(directory, "runs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isdir(runs) and len([n for n in os.listdir(runs) if n.endswith(".json")]) >= count:
            return
        assert process.poll() is None, "the study ended before it could be killed"
        time.sleep(0.05)
    raise AssertionError(f"no {count} rows after {timeout}s")

def kill_after_rows(directory, count=1):
    """Starts the tiny study in a real process and SIGKILLs it once `count` rows exist."""
    process = start_study(directory, TINY_STUDY)
    try:
        wait_for_rows(directory, process, count)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


def test_a_study_killed_with_sigkill_resumes_without_rerunning(tmp_path):
    directory = str(tmp_path / "study")
    kill_after_rows(directory)
    before = {row["key"]: row for row in tuning.results(directory)}
    # 2 rates x 2 seeds, without BN and with BN (one order): 8 runs in all.
    assert 1 <= len(before) < 8

    rows = tuning.Study(directory=directory, **TINY_STUDY).run()

    points = [(r["norm"], r["order"], r["rate"], r["seed"]) for r in rows]
    assert len(points) == len(set(points)) == 8
    assert all(r["status"] == "completed" for r in rows)
    # No completed run trained again: its row (times included) is untouched.
    for row in rows:
        if row["key"] in before:
            assert row == before[row["key"]]


def test_a_killed_study_with_lost_and_corrupt_state_resumes_and_names_it(tmp_path):
    directory = str(tmp_path / "study")
    kill_after_rows(directory, 2)  # one row to cut, at least one intact: still a study
    runs = tmp_path / "study" / "runs"
    before = {row["key"]: row for row in tuning.results(directory)}
    # What a bad disk and a killed writer leave: a lock file (its holder is
    # dead), a temporary file, study.json gone, one row cut short.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "study" / ".lock").write_text(json.dumps({"pid": dead.pid, "host": "elsewhere", "started": "2026-01-01T00:00:00+00:00"}))
    leftover = runs / f".{next(iter(before))}.json.{dead.pid}-0.tmp"
    leftover.write_text('{"key": ')
    (tmp_path / "study" / "study.json").unlink()
    cut = sorted(before)[0]
    (runs / f"{cut}.json").write_text((runs / f"{cut}.json").read_text()[:40])

    with pytest.warns(UserWarning) as caught:
        rows = tuning.Study(directory=directory, **TINY_STUDY).run()

    messages = [str(w.message) for w in caught]
    assert any(f"rebuilt from the command's settings, {len(before) - 1} rows match" in m for m in messages)
    assert any(m.startswith(f"runs/{cut}.json is not a valid row (") and m.endswith("moved to runs/corrupt/; that run trains again") for m in messages)
    points = [(r["norm"], r["order"], r["rate"], r["seed"]) for r in rows]
    assert len(points) == len(set(points)) == 8
    assert all(r["status"] == "completed" for r in rows)
    for row in rows:  # the cut row trained again, every intact one is untouched
        if row["key"] in before and row["key"] != cut:
            assert row == before[row["key"]]
        else:
            assert row["finished_at"] >= max(r["finished_at"] for r in before.values())
    assert cut in {row["key"] for row in rows}
    assert os.listdir(runs / "corrupt") == [f"{cut}.json"]
    assert not leftover.exists()
    assert tuning.results(directory).study["rates"] == [0.0, 0.5]
