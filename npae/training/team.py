"""A team of threads that run the phases of a training step together, with BLAS on one thread each.

NumPy releases the GIL inside its large element-wise operations and its matrix products, so
Python threads that each work on their own part of a batch — or of a flat parameter buffer —
use every core for all of a step's work, not only for the products.  OpenBLAS's own threads
would then compete with them (its idle threads spin after each product), so while a team is
at work, BLAS is limited to one thread per caller (threadpoolctl, the standard way to set it).

``team.run(phase)`` calls ``phase(i)`` on each of the ``n`` members — member 0 is the calling
thread — and returns when all are done, with their results in member order; an exception in
any member is raised in the caller.  ``team.map(fn, arguments)`` calls ``fn`` once per member
with its own arguments.  A team of one runs the phase inline.
"""

import os
import queue
import signal
import threading

import threadpoolctl


def available_cores():
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


WORTH_THREADS = 8e6  # batch rows × parameters below which a step loses more than it gains


def how_many(n_jobs, work, rows=None):
    """Threads for a step, in scikit-learn's meaning of ``n_jobs``: an int ≥ 1 is that many; -1
    every available core, -2 all but one, …; None, every core when the step's ``work`` (batch rows
    × parameters) is at least WORTH_THREADS (smaller steps lose more to the threads' hand-offs
    of the GIL than they gain: ``benchmarks/README.md``), else 1.  Never more than the cores, nor than
    the batch's ``rows`` (each thread holds a gradient buffer: a thread with no rows to work on,
    or waiting for a core, costs memory and gains nothing)."""
    cores = available_cores()
    if n_jobs is None:
        wanted = cores if work >= WORTH_THREADS else 1
    elif n_jobs < 0:
        wanted = cores + 1 + n_jobs
    else:
        wanted = n_jobs
    return max(1, min(wanted, cores, rows if rows is not None else cores))


class OneBlasThread:
    """BLAS limited to one thread while any team works, restored when the last one is done.

    The limit is process-wide, so two teams at work at once (two fits on two threads) share
    it: the first to start records the limit it found and sets 1; the last to finish puts the
    recorded one back.  (Each restoring what it found would leave BLAS at one thread for good:
    the second found the first's.)
    """

    def __init__(self):
        self.lock, self.users, self.limits = threading.Lock(), 0, None

    def acquire(self):
        with self.lock:
            if self.users == 0:
                self.limits = threadpoolctl.threadpool_limits(limits=1, user_api="blas")
            self.users += 1

    def release(self):
        with self.lock:
            self.users -= 1
            if self.users == 0:
                self.limits.restore_original_limits()
                self.limits = None


BLAS = OneBlasThread()


class Team:
    """``n`` threads (the caller and ``n - 1`` workers) running phases together; a context manager."""

    def __init__(self, n):
        self.n = n
        self.inboxes = [queue.SimpleQueue() for _ in range(n - 1)]
        self.outbox = queue.SimpleQueue()
        self.workers, self.blas = [], False

    def __enter__(self):
        BLAS.acquire()
        self.blas = True
        for i, inbox in enumerate(self.inboxes, 1):
            worker = threading.Thread(target=self._serve, args=(i, inbox), daemon=True,
                                      name=f"npae-worker-{i}")
            worker.start()
            self.workers.append(worker)
        return self

    def _serve(self, i, inbox):
        # signals are for the calling thread, which acts on them between steps
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        while True:
            phase = inbox.get()
            if phase is None:
                return
            try:
                self.outbox.put((i, phase(i), None))
            except BaseException as exc:  # handed to the caller, which raises it
                self.outbox.put((i, None, exc))

    def run(self, phase):
        """``[phase(0), phase(1), …]``, member i on thread i, all at once."""
        for inbox in self.inboxes:
            inbox.put(phase)
        results, error = [None] * self.n, None
        try:
            results[0] = phase(0)
        except BaseException as exc:
            error = exc
        waiting = len(self.inboxes)
        while waiting:  # every member finishes its phase before anything goes on
            try:
                i, result, exc = self.outbox.get()
            except BaseException as interrupted:  # (a second Ctrl-C): still wait, then raise it
                error = error or interrupted
                continue
            results[i], error, waiting = result, error or exc, waiting - 1
        if error is not None:
            raise error
        return results

    def map(self, fn, arguments):
        """``[fn(*arguments[0]), fn(*arguments[1]), …]``, the i-th on member i (at most ``n``
        calls; members without one are idle)."""
        return self.run(lambda i: fn(*arguments[i]) if i < len(arguments) else None)[:len(arguments)]

    def __exit__(self, *exc):
        for inbox in self.inboxes:
            inbox.put(None)
        for worker in self.workers:
            worker.join()
        self.workers = []
        if self.blas:
            self.blas = False
            BLAS.release()
        return False
