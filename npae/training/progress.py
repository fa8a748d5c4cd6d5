"""What training prints: a one-line progress bar on a terminal, one plain line per epoch elsewhere.

``verbose=0`` prints nothing; ``verbose=1`` prints a line per epoch (and, on
a terminal, redraws a bar at most ten times a second with batches done,
samples per second, the running loss and the time left).
"""

import sys
import time


class Progress:
    """Progress of ``epochs`` epochs of ``n_batches`` batches over ``n_samples`` rows."""

    def __init__(self, epochs, n_batches, n_samples, verbose, stream=None):
        self.epochs, self.n_batches, self.n_samples = epochs, n_batches, n_samples
        self.stream = stream or sys.stdout
        self.verbose = verbose
        self.bar = verbose >= 1 and getattr(self.stream, "isatty", lambda: False)()
        self.last_drawn = 0.0
        self.epoch, self.started = 0, time.perf_counter()

    def start_epoch(self, epoch):
        self.epoch, self.started = epoch, time.perf_counter()

    def batch(self, done_batches, done_samples, running_loss):
        now = time.perf_counter()
        if not self.bar or (now - self.last_drawn < 0.1 and done_batches < self.n_batches):
            return
        self.last_drawn = now
        elapsed = now - self.started
        rate = done_samples / elapsed if elapsed > 0 else 0.0
        left = (self.n_samples - done_samples) / rate if rate > 0 else 0.0
        width = 24
        filled = int(width * done_batches / max(self.n_batches, 1))
        self.stream.write(
            f"\repoch {self.epoch + 1}/{self.epochs} [{'#' * filled}{'.' * (width - filled)}] "
            f"{done_batches}/{self.n_batches} · {rate:,.0f} samples/s · loss {running_loss:.4f} · "
            f"{left:.0f}s left ")
        self.stream.flush()

    def end_epoch(self, history, note=""):
        if self.verbose < 1:
            return
        line = (f"epoch {self.epoch + 1}/{self.epochs}  loss {history['loss'][-1]:.4f}"
                + (f"  val_loss {history['val_loss'][-1]:.4f}" if history.get("val_loss") else "")
                + f"  ({time.perf_counter() - self.started:.1f}s){note}")
        self.stream.write(("\r\033[K" if self.bar else "") + line + "\n")
        self.stream.flush()

    def say(self, message):
        """A line of its own (after a bar, on a fresh line), on standard error."""
        if self.verbose >= 1:
            print(("\n" if self.bar else "") + message, file=sys.stderr)
