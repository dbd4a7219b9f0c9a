"""Resume after SIGKILL: a real study process is killed once rows exist."""

import os
import signal
import time

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

def test_a_study_killed_with_sigkill_resumes_without_rerunning(tmp_path):
    directory = str(tmp_path / "study")
    process = start_study(directory, TINY_STUDY)
    try:
        wait_for_rows(directory, process, 1)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
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
