"""Signals: Ctrl-C (SIGINT) and SIGTERM as clean stops, never as lost work or stray files.

SIGTERM is what ``kill``, ``timeout``, systemd and batch schedulers send.  By
default it ends a Python process at once, skipping every ``finally``; npae
turns it into the exception :class:`Terminated` (exit status 143, as for the
signal itself), so cleanup runs.  During training both signals only raise a
flag, which the loop checks between batches; and a save that must not be cut
short runs with both held back until it is done.
"""

import contextlib
import signal
import threading


class Terminated(SystemExit):
    """SIGTERM, as an exception: the exit status is 143 (128 + 15), as for the signal."""

    def __init__(self):
        super().__init__(143)


class StopAtBatchBoundary:
    """SIGINT and SIGTERM set ``caught`` ("SIGINT" / "SIGTERM"), for the training loop to check
    between batches (main thread only).

    A second signal while the flag is up acts at once: KeyboardInterrupt for
    SIGINT, :class:`Terminated` for SIGTERM.  The previous handlers come back
    on exit.
    """

    NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}

    def __init__(self):
        self.caught = None
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in self.NAMES:
                self.previous[number] = signal.signal(number, self.handle)
        return self

    def handle(self, number, frame):
        if self.caught:
            raise KeyboardInterrupt if number == signal.SIGINT else Terminated()
        self.caught = self.NAMES[number]

    def __exit__(self, *exc):
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        return False


@contextlib.contextmanager
def deferred():
    """SIGINT and SIGTERM wait until the block is done, then act: a save is never cut short."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def terminate_cleanly():
    """From now on SIGTERM raises :class:`Terminated`; returns the previous handler (None when
    not on the main thread, where signals are left alone)."""
    def handler(number, frame):
        raise Terminated()
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None
