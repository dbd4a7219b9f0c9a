"""kreg.interrupts: SIGINT and SIGTERM raise at once, or at the next check
inside `deferred()`; a SIGINT the process was started ignoring stays ignored."""

import os
import signal
import time

import pytest

from kreg import interrupts


@pytest.fixture(autouse=True)
def handlers():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def send(signum):
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # Python runs the handler at the next bytecode


def test_a_signal_outside_a_deferred_block_raises_at_once():
    signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupts.install()
    with pytest.raises(interrupts.Terminated):
        send(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as raised:
        send(signal.SIGINT)
    assert not isinstance(raised.value, interrupts.Terminated)


def test_a_signal_inside_a_deferred_block_waits_for_the_next_check():
    interrupts.install()
    reached = []
    with pytest.raises(interrupts.Terminated):
        with interrupts.deferred():
            send(signal.SIGTERM)
            reached.append("after the signal")
            interrupts.check()
            reached.append("after the check")
    assert reached == ["after the signal"]
    interrupts.check()  # raised once: nothing is left pending


def test_the_end_of_a_deferred_block_raises_a_signal_noted_in_it():
    interrupts.install()
    with pytest.raises(interrupts.Terminated):
        with interrupts.deferred():
            send(signal.SIGTERM)
    interrupts.check()


def test_a_sigint_ignored_from_the_start_stays_ignored():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    interrupts.install()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    send(signal.SIGINT)  # nothing happens
