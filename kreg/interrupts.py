"""Ctrl-C and SIGTERM stop a study for sure, at a point where it can stop.

Python raises `KeyboardInterrupt` in whatever the main thread runs when the
signal comes. Inside a Keras `fit` that may be the backend's own machinery,
where the exception can be lost: Keras on PyTorch retries a failed symbolic
trace under a bare `except:`, and TensorFlow runs the training batches'
Python generator inside its data pipeline. So while training runs under
`deferred()`, a signal is only noted, and `check()` (called by a Keras
callback after each batch) raises it there; anywhere else it is raised at once.

Example:

```python
from kreg import interrupts

interrupts.install()
with interrupts.deferred():
    model.fit(x, y, callbacks=[StopOnSignal()])   # calls interrupts.check()
```
"""

import contextlib
import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's `KeyboardInterrupt`, so that a study
    stops the same way."""


_state = {"deferring": 0, "pending": None}


def _handle(signum, frame):
    error = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
    if _state["deferring"]:
        _state["pending"] = error
        return
    raise error


def install():
    """Handles SIGTERM, and SIGINT unless the process was started with it
    ignored (a job started with `&` from a script keeps ignoring Ctrl-C)."""
    signal.signal(signal.SIGTERM, _handle)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _handle)


def check():
    """Raises the signal noted during `deferred()`, if any."""
    error, _state["pending"] = _state["pending"], None
    if error is not None:
        raise error


@contextlib.contextmanager
def deferred():
    """A block in which a signal is noted rather than raised; `check()`
    raises it, and so does the end of the block."""
    _state["deferring"] += 1
    try:
        yield
    finally:
        _state["deferring"] -= 1
    check()
