"""Claiming a study directory: the lock, leftovers, a lost study.json."""

import errno
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

from kreg import tuning
from kreg.tuning import directory
from kreg.tuning import ledger
from kreg.tuning import schema

DESCRIPTION = {"model": "mlp", "dataset": "digits", "rates": [0.0, 0.5], "norms": ["none", "batch"], "orders": ["norm-act-drop"], "seeds": [0, 1]}
DONE = schema.Outcome("completed", {"final_val_loss": 0.25})
# A process that claims argv[1] and holds it until killed.
HOLDER = (
    "import sys, time\n"
    "from kreg.tuning import directory\n"
    "claim = directory.claim(sys.argv[1], {description!r})\n"
    "print('held', flush=True)\n"
    "time.sleep(600)\n"
).format(description=DESCRIPTION)


def start_holder(study_dir, timeout=120):
    """A subprocess holding a claim on `study_dir`, once it holds it."""
    # Run outside the repository root, whose kreg/ would shadow the installed kreg.
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, os.path.abspath(study_dir)],
        cwd=os.path.dirname(os.path.abspath(study_dir)),
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            assert line == "held\n", f"the holder said {line!r} (exit code {process.poll()})"
            return process
        assert process.poll() is None, f"the holder died (exit code {process.returncode})"
    process.kill()
    raise AssertionError(f"the holder held nothing after {timeout}s")


def stop(process, sig=signal.SIGTERM):
    process.send_signal(sig)
    process.wait(timeout=60)
    process.stdout.close()


def dead_pid():
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def rows_in_grid(study_dir, count=2):
    rows = []
    for seed in range(count):
        rows.append(tuning.record_run(study_dir, {"norm": "batch", "order": "norm-act-drop", "rate": 0.5, "seed": seed}, DONE))
    return rows


def test_a_claim_holds_the_lock_until_released(tmp_path):
    study_dir = str(tmp_path / "s")
    with directory.claim(study_dir, DESCRIPTION) as claim:
        assert isinstance(claim, directory.Claim) and claim.held and claim.created and not claim.rebuilt
        assert ledger.read_study(study_dir) == DESCRIPTION
        holder = json.loads((tmp_path / "s" / ".lock").read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert holder == claim.holder and holder["started"].endswith("+00:00")
        assert directory.holds(study_dir)
        # A second claim, even in this process, is refused while the first holds.
        with pytest.raises(directory.StudyLockedError, match=r"is in use by another kreg study: this process already holds it"):
            directory.claim(study_dir, DESCRIPTION)
    assert not claim.held and not directory.holds(study_dir)
    assert sorted(os.listdir(tmp_path / "s")) == ["study.json"]  # the lock file goes with the lock
    claim.release()  # idempotent
    # The same study resumed: claimed again, nothing rewritten.
    again = directory.claim(study_dir, DESCRIPTION)
    assert again.held and not again.created
    again.release()


def test_a_second_process_is_refused_with_the_holders_name(tmp_path):
    study_dir = str(tmp_path / "s")
    holder = start_holder(study_dir)
    try:
        written = (tmp_path / "s" / "study.json").read_text()
        with pytest.raises(directory.StudyLockedError) as refused:
            directory.claim(study_dir, DESCRIPTION)
        message = str(refused.value)
        assert f"is in use by another kreg study: it is held by pid {holder.pid} on host {socket.gethostname()!r} since " in message
        assert refused.value.holder["pid"] == holder.pid
        assert isinstance(refused.value, tuning.StudyConflictError) and isinstance(refused.value, ValueError)
        # A Study in this process is refused too, before touching anything.
        with pytest.raises(directory.StudyLockedError, match=rf"held by pid {holder.pid}"):
            directory.claim(study_dir, dict(DESCRIPTION, rates=[0.1]))
        assert (tmp_path / "s" / "study.json").read_text() == written
        # A reader leaves a corrupt row to the holder (which moves it aside itself).
        (tmp_path / "s" / "runs").mkdir()
        (tmp_path / "s" / "runs" / "ab12.json").write_text("{")
        with pytest.warns(UserWarning, match=rf"runs/ab12.json is not a valid row .*skipped and left in place, since another process holds the study \(pid {holder.pid}"):
            assert list(tuning.results(study_dir)) == []
        assert os.listdir(tmp_path / "s" / "runs") == ["ab12.json"]
    finally:
        stop(holder)
    with directory.claim(study_dir, DESCRIPTION) as claim:
        assert claim.held


def test_a_lock_left_by_a_killed_process_never_blocks(tmp_path):
    study_dir = str(tmp_path / "s")
    holder = start_holder(study_dir)
    stop(holder, signal.SIGKILL)
    assert holder.returncode == -signal.SIGKILL
    # The file stays (nobody removed it), with the dead holder's name in it...
    assert json.loads((tmp_path / "s" / ".lock").read_text())["pid"] == holder.pid
    # ...but the OS released the lock with the process.
    started = time.monotonic()
    with directory.claim(study_dir, DESCRIPTION) as claim:
        assert time.monotonic() - started < 5
        assert json.loads((tmp_path / "s" / ".lock").read_text())["pid"] == os.getpid()
        assert claim.held and not claim.created


def test_a_refused_claim_writes_nothing_and_releases_the_lock(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(tuning.StudyConflictError, match=r"is not empty and holds no kreg study"):
        directory.claim(str(tmp_path), DESCRIPTION)
    assert os.listdir(tmp_path) == ["notes.txt"]
    study_dir = str(tmp_path / "s")
    directory.claim(study_dir, DESCRIPTION).release()
    with pytest.raises(tuning.StudyConflictError, match=r"holds a different study \(rates: \[0\.0, 0\.5\] there, \[0\.1\] here"):
        directory.claim(study_dir, dict(DESCRIPTION, rates=[0.1]))
    assert not directory.holds(study_dir) and os.listdir(study_dir) == ["study.json"]
    directory.claim(study_dir, DESCRIPTION).release()  # the refusal released the lock


def test_the_claim_removes_temporary_files_of_killed_writers(tmp_path):
    study_dir = str(tmp_path / "s")
    (row,) = rows_in_grid(study_dir, 1)
    ledger.write_study(study_dir, DESCRIPTION)
    dead = dead_pid()
    runs = tmp_path / "s" / "runs"
    stale = [tmp_path / "s" / f".study.json.{dead}.tmp", runs / f".{row['key']}.json.{dead}-0a1b.tmp", runs / ".junk.tmp"]
    for path in stale:
        path.write_text('{"key": "ab')
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        # A writer that still runs (a report being written, say) keeps its file.
        live = tmp_path / "s" / f".report.md.{sleeper.pid}-ffff.tmp"
        live.write_text("half")
        # A read-only reader removes nothing.
        assert [r["key"] for r in tuning.results(study_dir)] == [row["key"]]
        assert all(path.exists() for path in stale)
        with directory.claim(study_dir, DESCRIPTION):
            assert not any(path.exists() for path in stale)
            assert live.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sorted(os.listdir(runs)) == [row["key"] + ".json"]


def test_a_missing_study_json_is_rebuilt_when_the_rows_fit(tmp_path):
    study_dir = str(tmp_path / "s")
    rows = rows_in_grid(study_dir)
    leftover = tmp_path / "s" / "runs" / f".lost.json.{dead_pid()}-ab.tmp"
    leftover.write_text("{")  # a killed writer's file: no study, no row
    with pytest.warns(UserWarning, match=r"study\.json was missing in '.*s': rebuilt from the command's settings, 2 rows match"):
        claim = directory.claim(study_dir, DESCRIPTION)
    with claim:
        assert claim.rebuilt and not claim.created
        assert ledger.read_study(study_dir) == DESCRIPTION
        assert not leftover.exists()
    assert list(tuning.results(study_dir)) == sorted(rows, key=lambda r: r["seed"])


def test_a_missing_study_json_next_to_other_rows_is_refused(tmp_path):
    study_dir = str(tmp_path / "s")
    rows = rows_in_grid(study_dir)
    tuning.record_run(study_dir, {"norm": "batch", "order": "act-norm-drop", "rate": 0.7, "seed": 0}, DONE)
    before = sorted(os.listdir(tmp_path / "s" / "runs"))
    with pytest.raises(tuning.StudyConflictError) as refused:
        directory.claim(study_dir, DESCRIPTION)
    message = str(refused.value)
    assert "has no study.json, and 1 of its 3 rows lie outside this study's grid (runs/" in message
    assert "rate 0.7 not in rates [0.0, 0.5]" in message and "holds a different study" in message
    # Nothing written, nothing moved, nothing left locked.
    assert sorted(os.listdir(tmp_path / "s")) == ["runs"]
    assert sorted(os.listdir(tmp_path / "s" / "runs")) == before
    assert rows[0] in list(tuning.results(study_dir))
    wider = dict(DESCRIPTION, rates=[0.0, 0.5, 0.7], orders=["norm-act-drop", "act-norm-drop"])
    with pytest.warns(UserWarning, match=r"rebuilt from the command's settings, 3 rows match"):
        directory.claim(study_dir, wider).release()


def test_a_study_json_that_does_not_parse_is_named(tmp_path):
    study_dir = str(tmp_path / "s")
    rows_in_grid(study_dir)
    (tmp_path / "s" / "study.json").write_text('{"model": ')
    with pytest.raises(tuning.StudyConflictError, match=r"study\.json in '.*s' is not valid JSON \(Expecting value: .*\); repair or remove it"):
        directory.claim(study_dir, DESCRIPTION)
    with pytest.warns(UserWarning, match=r"study\.json in .* is not valid JSON .*: the study's description is left out"):
        rows = tuning.results(study_dir)
    assert len(rows) == 2 and rows.study is None
    assert not directory.holds(study_dir) and not (tmp_path / "s" / ".lock").exists()


def test_an_unwritable_directory_is_named_with_its_cause(tmp_path, monkeypatch):
    study_dir = tmp_path / "s"
    study_dir.mkdir()
    os.chmod(study_dir, 0o555)
    try:
        probe = study_dir / "probe"
        try:
            probe.write_text("")  # root ignores the mode bits
            probe.unlink()
            writable = True
        except PermissionError:
            writable = False
        if writable:
            real_open = os.open

            def refuse(path, *args, **kwargs):
                if os.fspath(path).startswith(str(study_dir)):
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
                return real_open(path, *args, **kwargs)

            monkeypatch.setattr(os, "open", refuse)
        with pytest.raises(ledger.StudyWriteError) as refused:
            directory.claim(str(study_dir), DESCRIPTION)
        assert str(refused.value) == f"cannot create .lock in {str(study_dir)!r}: Permission denied"
        assert isinstance(refused.value, OSError) and refused.value.errno == errno.EACCES
    finally:
        monkeypatch.undo()
        os.chmod(study_dir, 0o755)
    assert os.listdir(study_dir) == []


def test_the_claim_holders_results_move_corrupt_rows_aside(tmp_path):
    study_dir = str(tmp_path / "s")
    (row,) = rows_in_grid(study_dir, 1)
    ledger.write_study(study_dir, DESCRIPTION)
    (tmp_path / "s" / "runs" / "ab12.json").write_text('{"key": "ab12"}')
    with directory.claim(study_dir, DESCRIPTION) as claim:
        with pytest.warns(UserWarning, match=r"^runs/ab12.json is not a valid row \(lacks the columns \['status', 'norm', 'order', 'rate', 'seed'\]\): moved to runs/corrupt/; that run trains again$"):
            assert list(tuning.results(study_dir)) == [row]
        assert claim.held  # the reader used the claim's lock, and left it held
        assert sorted(os.listdir(tmp_path / "s")) == [".lock", "runs", "study.json"]
    assert os.listdir(tmp_path / "s" / "runs" / "corrupt") == ["ab12.json"]
