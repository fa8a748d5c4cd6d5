"""Signals: Ctrl-C (SIGINT) and SIGTERM as clean stops, never as lost work or stray files.

SIGTERM is what ``kill``, ``timeout``, systemd and batch schedulers send.  By
default it ends a Python process at once, skipping every ``finally``; npae
turns it into the exception :class:`Terminated` (exit status 143, as for the
signal itself), so cleanup runs.  During training both signals only raise a
flag, which the loop checks between batches and once more as the run ends (a
signal during the last batch or the final save is never swallowed); and a save
that must not be cut short runs with both held back until it is done.  A signal
the process ignores (``SIG_IGN``) stays ignored: npae never installs a handler over it.
"""

import contextlib
import signal
import threading


class Terminated(SystemExit):
    """SIGTERM, as an exception: the exit status is 143 (128 + 15), as for the signal."""

    def __init__(self):
        super().__init__(143)


NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


def _raise(number):
    raise KeyboardInterrupt if number == signal.SIGINT else Terminated()


class StopAtBatchBoundary:
    """SIGINT and SIGTERM set ``caught`` ("SIGINT" / "SIGTERM"), for the training loop to check
    between batches (main thread only).

    A second signal while the flag is up stops the run: KeyboardInterrupt for SIGINT,
    :class:`Terminated` for SIGTERM — at once, or, when it arrives during a step (between
    :meth:`begin_step` and :meth:`end_step`), as soon as that step is complete, so the
    parameters are never left half-updated.  The previous handlers come back on exit.
    """

    def __init__(self):
        self.caught, self.again, self.in_step = None, None, False
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in NAMES:
                if signal.getsignal(number) != signal.SIG_IGN:  # ignored by choice: stays so
                    self.previous[number] = signal.signal(number, self.handle)
        return self

    def handle(self, number, frame):
        if not self.caught:
            self.caught = NAMES[number]
        elif self.in_step:
            self.again = number
        else:
            _raise(number)

    def begin_step(self):
        self.in_step = True

    def end_step(self):
        self.in_step = False
        if self.again is not None:
            _raise(self.again)

    def __exit__(self, *exc):
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        return False


@contextlib.contextmanager
def deferred():
    """SIGINT and SIGTERM that arrive during the block act when it is done, as they would
    have then: a save is never cut short.  (They are caught in Python, not blocked: a signal
    blocked in one thread is delivered to another, and its handler runs all the same.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {number: signal.signal(number, lambda n, frame: caught.append(n)) for number in NAMES
                if signal.getsignal(number) != signal.SIG_IGN}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in caught:
            handler = previous[number]
            if callable(handler):
                handler(number, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(number)  # the default action: what the process had


def terminate_cleanly():
    """From now on SIGTERM raises :class:`Terminated`; returns the previous handler (None when
    not on the main thread, where signals are left alone).  A process that ignores SIGTERM
    (``SIG_IGN``, say under ``nohup``-like launchers) keeps ignoring it."""
    def handler(number, frame):
        raise Terminated()
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
            return signal.SIG_IGN
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None
