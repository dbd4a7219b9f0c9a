"""`Progress`: what a study shows while it runs, whichever executor trains."""

import time


class Progress:
    """One line per recorded run: runs done / total, the run, its metric, ETA.

    Args:
        total: number of runs of the study (None when unknown, e.g. Hyperband).
        done: runs already recorded when this session started.
        quiet: print nothing.
        metric_column: the row column shown on each line.
    """

    def __init__(self, total, done=0, quiet=False, metric_column="final_val_loss"):
        self.total = total
        self.done = done
        self.quiet = quiet
        self.metric_column = metric_column
        self.start = time.monotonic()
        self.new = 0
        if done and not quiet:
            print(f"resuming: {done}/{total or '?'} runs already recorded", flush=True)

    def say(self, message):
        """Prints one line, unless quiet."""
        if not self.quiet:
            print(message, flush=True)

    def update(self, row):
        """Shows a recorded row."""
        self.done += 1
        self.new += 1
        if self.quiet:
            return
        elapsed = time.monotonic() - self.start
        eta = "?"
        if self.total is not None:
            seconds = elapsed / self.new * max(self.total - self.done, 0)
            eta = f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
        order = f" order={row['order']}" if row["order"] else ""
        value = row.get(self.metric_column)
        measured = f"{self.metric_column}={value:.4f}" if value is not None else row["status"]
        wall = f"{row['wall_time']:.1f}s" if row["wall_time"] is not None else "-"
        print(
            f"[{self.done}/{self.total or '?'}] norm={row['norm']}{order} rate={row['rate']:g} "
            f"seed={row['seed']}: {measured} ({wall}) ETA {eta}",
            flush=True,
        )
