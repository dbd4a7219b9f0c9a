"""`Progress`: what a study shows while it runs, whichever executor trains.

- A pack shows its epochs as they happen: on a terminal a Keras `Progbar`
  ("pack 1/2, 53 runs", epoch e/E, elapsed, an ETA from the measured epoch
  times); elsewhere (CI logs, pipes) a plain line at a quarter, half, three
  quarters and the end of the pack, never one per step.
- Every recorded run shows one line: runs done / total, the run, its metric
  and, for the whole study, an ETA from the last runs' measured durations
  (for packed runs, the pack's time shared among its runs).
"""

import collections
import math
import sys
import time

# Durations of the last runs that the ETA of the study averages.
ETA_WINDOW = 5


def _clock(seconds):
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """The progress display of a study.

    Args:
        total: number of runs of the study (None when unknown, e.g. Hyperband).
        done: runs already recorded when this session started.
        quiet: print nothing.
        metric_column: the row column shown on each line.
        stream: where to print (default: stdout).
    """

    def __init__(self, total, done=0, quiet=False, metric_column="final_val_loss", stream=None):
        self.total = total
        self.done = done
        self.quiet = quiet
        self.metric_column = metric_column
        self.stream = stream or sys.stdout
        self.durations = collections.deque(maxlen=ETA_WINDOW)
        self.last = time.monotonic()
        self.bar = None
        self.pack = None
        self.checkpoint = None  # (epochs saved, epochs) of the pack training now
        if done:
            self.say(f"resuming: {done}/{total or '?'} runs already recorded")

    def say(self, message):
        """Prints one line, unless quiet."""
        if not self.quiet:
            print(message, file=self.stream, flush=True)

    def _terminal(self):
        return hasattr(self.stream, "isatty") and self.stream.isatty()

    def start_pack(self, index, count, runs, epochs):
        """A pack starts: pack `index` of `count`, holding `runs` runs."""
        self.pack = (index, count, runs, epochs)
        self.pack_start = time.monotonic()
        self.pack_left = runs  # trained with the pack, not shown yet
        self.checkpoint = None
        self.bar = None
        self.first_epoch = None  # (epoch, when it ended): the first this process trains
        if self.quiet:
            return
        self.say(f"pack {index}/{count}: {runs} runs as one model, {epochs} epochs")
        if self._terminal():
            from keras.utils import Progbar

            self.bar = Progbar(epochs, unit_name="epoch")

    def epoch(self, epoch):
        """Epoch `epoch` (from 1) of the current pack has ended."""
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(epoch)
            return
        index, count, runs, epochs = self.pack
        now = time.monotonic()
        # The first epoch trained (epoch 1, or a resumed pack's first) also
        # compiles: it is no measure of the others.
        if self.first_epoch is None:
            self.first_epoch = (epoch, now)
        first, first_end = self.first_epoch
        marks = {math.ceil(epochs * share) for share in (0.25, 0.5, 0.75, 1.0)}
        if epoch in marks:
            elapsed = now - self.pack_start
            per_epoch = (now - first_end) / (epoch - first) if epoch > first else elapsed
            eta = per_epoch * (epochs - epoch)
            self.say(f"pack {index}/{count}: epoch {epoch}/{epochs}, {_clock(elapsed)} elapsed, ETA {_clock(eta)}")

    def saved(self, epochs_done):
        """The current pack saved its state after `epochs_done` epochs."""
        self.checkpoint = (epochs_done, self.pack[3] if self.pack else epochs_done)

    def update(self, row):
        """Shows a recorded row."""
        now = time.monotonic()
        finished = 0  # runs trained but not shown yet (the rest of this pack)
        if row["worker"] == "packed":  # a pack's rows come at once: each its share of the pack
            self.durations.append((now - self.pack_start) / self.pack[2])
            self.pack_left -= 1
            finished = self.pack_left
        else:
            self.durations.append(now - self.last)
        self.last = now
        self.done += 1
        if self.quiet:
            return
        eta = "?"
        if self.total is not None:
            remaining = max(self.total - self.done - finished, 0)
            eta = _clock(sum(self.durations) / len(self.durations) * remaining)
        order = f" order={row['order']}" if row["order"] else ""
        value = row.get(self.metric_column)
        measured = f"{self.metric_column}={value:.4f}" if value is not None else row["status"]
        if row["worker"] == "packed":
            wall = "packed"
        else:
            wall = f"{row['wall_time']:.1f}s" if row["wall_time"] is not None else "-"
        self.say(
            f"[{self.done}/{self.total or '?'}] norm={row['norm']}{order} rate={row['rate']:g} "
            f"seed={row['seed']}: {measured} ({wall}) ETA {eta}"
        )
