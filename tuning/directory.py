"""Claiming a study directory: a new study, or the same study resumed.

`claim(directory, description)` takes the directory's lock, then checks (or
writes) `study.json`, and returns a `Claim` that holds the lock until it is
released:

```python
with directory.claim("kreg-study", description) as claim:
    rows = ledger.results(claim.directory)
    ...  # train and record runs
```

The lock is an OS file lock (`fcntl.flock`) on `DIR/.lock`, held open for the
life of the claim: a second process claiming the same directory is refused at
once (`StudyLockedError`, naming the process that holds it), and a process
that dies (SIGKILL included) releases it with its last file descriptor, so a
lock file left behind never blocks anyone.
"""

import datetime
import errno
import fcntl
import json
import math
import os
import re
import socket
import warnings
import weakref

from kreg.tuning import ledger

LOCK_FILE = ".lock"
# What `ledger.atomic_write_text` writes before moving a file into place.
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)(?:-[0-9a-f]+)?\.tmp$")
# Claims (and passing locks) held by this process, by real path.
_HELD = weakref.WeakValueDictionary()


class StudyConflictError(ValueError):
    """The directory holds another study (or files that are no study)."""


class StudyLockedError(StudyConflictError):
    """Another process (or another claim of this one) holds the directory's lock.

    Attributes:
        directory: the study directory.
        holder: what the holder wrote into the lock file (`pid`, `host`,
            `started`), or None if it could not be read.
    """

    def __init__(self, message, directory=None, holder=None):
        super().__init__(message)
        self.directory = directory
        self.holder = holder


def is_temporary(name):
    """True for a file name `ledger.atomic_write_text` uses while writing."""
    return name.startswith(".") and name.endswith(".tmp")


def holder_text(holder):
    """How a refusal names the holder of a lock ("pid 12 on host 'h' since ...")."""
    if not holder:
        return "a process that has not written its name into the lock file yet"
    parts = [f"pid {holder.get('pid')}"]
    if holder.get("host"):
        parts.append(f"on host {holder['host']!r}")
    if holder.get("started"):
        parts.append(f"since {holder['started']}")
    return " ".join(parts)


def _read_holder(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 4096)
        holder = json.loads(data.decode("utf-8"))
        return holder if isinstance(holder, dict) else None
    except (OSError, ValueError):
        return None


class _Lock:
    """`fcntl.flock` on `DIR/.lock`, held through an open file descriptor."""

    def __init__(self, directory):
        self.directory = directory
        self.path = os.path.join(directory, LOCK_FILE)
        self.fd = None
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = _read_holder(fd)
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise self._locked(holder) from None
                raise ledger.StudyWriteError.of(e, "lock", LOCK_FILE, directory) from e
            # The holder before us may have removed the file between our open
            # and our flock: then we locked a file nobody else sees; retry.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                break
            os.close(fd)
        self.holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(self.holder).encode("utf-8"), 0)
        except OSError:
            pass  # the lock holds without its label; a refusal then names no pid

    def _open(self):
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            action = "open" if os.path.lexists(self.path) else "create"
            raise ledger.StudyWriteError.of(e, action, LOCK_FILE, self.directory) from e

    def _locked(self, holder):
        mine = _HELD.get(os.path.realpath(self.directory))
        if mine is not None:
            who = "this process already holds it (a claim not released yet)"
        else:
            who = f"it is held by {holder_text(holder)}"
        return StudyLockedError(
            f"directory {self.directory!r} is in use by another kreg study: {who}; "
            "wait for that study to end or stop it (a dead process never holds the lock)",
            directory=self.directory,
            holder=holder,
        )

    def release(self):
        if self.fd is None:
            return
        try:
            # Removed while still locked: a process that opened it before sees
            # another file at the path once it gets the lock, and retries.
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def try_lock(directory):
    """Tries to lock `directory` for a moment (used by read-only readers).

    Returns:
        A `_Lock` to `release()` (None when this process holds a claim on
        `directory`: nothing to take then).

    Raises:
        StudyLockedError: another process holds it.
        StudyWriteError: the directory is not writable.
    """
    if holds(directory):
        return None
    return _Lock(directory)


def holds(directory):
    """True if this process holds an unreleased `Claim` on `directory`."""
    claim = _HELD.get(os.path.realpath(directory))
    return claim is not None and claim.held


class Claim:
    """A claimed study directory: holds its lock until `release()`.

    A context manager: `with claim(directory, description) as c:` releases
    on exit. A claim dropped without `release()` is released when it is
    garbage collected (its file descriptor closes), and in any case when the
    process ends.

    Attributes:
        directory: the study directory.
        description: the study description (as in `study.json`).
        created: True if this claim wrote a new `study.json` for an empty
            directory.
        rebuilt: True if `study.json` was missing next to rows and was
            rebuilt from `description`.
        holder: what this claim wrote into the lock file (`pid`, `host`,
            `started`).
    """

    def __init__(self, directory, description, lock, created=False, rebuilt=False):
        self.directory = directory
        self.description = description
        self.created = created
        self.rebuilt = rebuilt
        self._lock = lock
        self.holder = lock.holder
        _HELD[os.path.realpath(directory)] = self

    @property
    def held(self):
        """True until `release()`."""
        return self._lock is not None and self._lock.fd is not None

    def release(self):
        """Releases the lock (and removes the lock file). Idempotent."""
        if self._lock is not None:
            if _HELD.get(os.path.realpath(self.directory)) is self:
                del _HELD[os.path.realpath(self.directory)]
            self._lock.release()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def __del__(self):
        try:
            self.release()
        except Exception:
            pass

    def __repr__(self):
        return f"Claim({self.directory!r}, held={self.held})"


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # e.g. another user's process
    return True


def remove_leftovers(directory):
    """Removes the temporary files of killed writers in `directory` and `runs/`.

    Only the claim holder calls this. A temporary file whose writer (named by
    the pid in its name) still runs on this host is kept (a report being
    written, say).

    Returns:
        The paths removed.
    """
    removed = []
    for folder in (directory, os.path.join(directory, ledger.RUNS_DIR)):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if not is_temporary(name):
                continue
            match = _TEMPORARY.match(name)
            if match is not None:
                pid = int(match["pid"])
                if pid == os.getpid() or _pid_alive(pid):
                    continue
            path = os.path.join(folder, name)
            try:
                if os.path.isfile(path):
                    os.unlink(path)
                    removed.append(path)
            except OSError:
                pass  # left for the next claim; readers ignore it
    return removed


def _same_rate(a, b):
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _outside(row, description):
    """Why `row` lies outside the grid of `description` (None if it does not)."""
    if row["norm"] not in description["norms"]:
        return f"norm {row['norm']!r} not in norms {description['norms']}"
    if not any(_same_rate(row["rate"], rate) for rate in description["rates"]):
        return f"rate {row['rate']!r} not in rates {description['rates']}"
    if row["seed"] not in description["seeds"]:
        return f"seed {row['seed']!r} not in seeds {description['seeds']}"
    if row["order"] is not None and row["order"] not in description["orders"]:
        return f"order {row['order']!r} not in orders {description['orders']}"
    return None


def _rebuild(directory, description, others):
    """Checks the rows of a directory without `study.json` against `description`.

    Returns:
        The number of rows that match (all of them).

    Raises:
        StudyConflictError: some row lies outside the grid, or the directory
            holds no rows and other files.
    """
    scan = ledger.scan_runs(directory)
    runs_is_folder = os.path.isdir(os.path.join(directory, ledger.RUNS_DIR))
    if not runs_is_folder or (not scan.rows and [n for n in others if n != ledger.RUNS_DIR]):
        raise StudyConflictError(
            f"directory {directory!r} is not empty and holds no kreg study "
            f"(no {ledger.STUDY_FILE}, no rows in {ledger.RUNS_DIR}/); choose an empty or new directory"
        )
    grid = ("norms", "rates", "seeds", "orders")
    missing = [name for name in grid if not isinstance(description.get(name), list)]
    if scan.rows and missing:
        raise StudyConflictError(
            f"directory {directory!r} has no {ledger.STUDY_FILE} but {len(scan.rows)} rows, and the settings "
            f"declare no {missing} to check them against; use another directory"
        )
    outside = [(name, why) for name, row in scan.named_rows for why in [_outside(row, description)] if why]
    if outside:
        examples = "; ".join(f"{ledger.RUNS_DIR}/{name}: {why}" for name, why in outside[:3])
        raise StudyConflictError(
            f"directory {directory!r} has no {ledger.STUDY_FILE}, and {len(outside)} of its {len(scan.rows)} rows "
            f"lie outside this study's grid ({examples}); it holds a different study: "
            "run it with the settings of those rows, or use another directory"
        )
    return len(scan.rows)


def claim(directory, description):
    """Locks the study directory, then creates it or checks that it holds this study.

    Args:
        directory: the study directory (created if missing).
        description: what identifies the study (JSON-ready dict; its grid,
            `norms`, `rates`, `orders`, `seeds`, is what rows are checked
            against when `study.json` is missing).

    Returns:
        A `Claim` holding the directory's lock: use it as a context manager
        or call `release()`.

    Raises:
        StudyLockedError: another process (or an unreleased claim of this
            one) holds the directory (the message names its pid, host and
            start time).
        StudyConflictError: the directory holds a different study, is not
            empty and holds no study, or has no `study.json` and rows that
            do not fit `description`. Nothing is written then (and the lock
            is released).
        StudyWriteError: the directory cannot be created or written (an
            `OSError`).

    Warns:
        UserWarning: `study.json` was missing next to rows that fit
            `description`, and was rebuilt.
    """
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise ledger.StudyWriteError.of(e, "create the directory", None, directory) from e
    lock = _Lock(directory)
    try:
        created = rebuilt = False
        try:
            found = ledger.read_study(directory)
        except ValueError as e:  # study.json does not parse
            raise StudyConflictError(
                f"{e}; repair or remove it (the rows in {ledger.RUNS_DIR}/ are kept, and study.json is "
                "rebuilt from the command's settings when they fit)"
            ) from None
        if found is None:
            others = [n for n in os.listdir(directory) if n != LOCK_FILE and not is_temporary(n)]
            if others:
                count = _rebuild(directory, description, others)
                warnings.warn(
                    f"{ledger.STUDY_FILE} was missing in {directory!r}: rebuilt from the command's settings, "
                    f"{count} rows match",
                    stacklevel=2,
                )
                rebuilt = True
            else:
                created = True
            ledger.write_study(directory, description)
        else:
            differ = [k for k in sorted(set(found) | set(description)) if found.get(k) != description.get(k)]
            if differ:
                details = "; ".join(f"{k}: {found.get(k)!r} there, {description.get(k)!r} here" for k in differ)
                raise StudyConflictError(
                    f"directory {directory!r} holds a different study ({details}); "
                    "use another directory, or the same settings to resume it"
                )
        remove_leftovers(directory)
        return Claim(directory, description, lock, created=created, rebuilt=rebuilt)
    except BaseException:
        lock.release()
        raise
