"""From a study's runs to a measured recommendation.

The question: with batch norm on, should the dropout rate change, and by how
much? For every seed the study trained the same grid of rates with and without
batch norm from the same initial weights, so each seed gives one paired
difference `d = best rate with BN - best rate without BN`. The mean of `d`
with a 95% interval (Student t, and a percentile bootstrap) is the answer.

Verdict thresholds (`large_shift` defaults to 0.2, i.e. two steps of a 0.1 grid):

- "keep": fewer than two paired seeds, or either interval covers zero (the
  data cannot tell a shift from seed noise).
- "remove": the interval lies below zero and the best rate with BN is 0.
- "significantly decrease" / "significantly increase": the interval excludes
  zero and the mean shift is at least `large_shift` in size.
- "slightly decrease" / "slightly increase": the interval excludes zero and
  the mean shift is smaller than `large_shift`.
"""

import dataclasses
import math

import numpy as np

from kreg import checks
from kreg.tuning import ledger
from kreg.tuning import schema

VERDICTS = (
    "remove",
    "significantly decrease",
    "slightly decrease",
    "keep",
    "slightly increase",
    "significantly increase",
)
def t_interval(values, confidence=0.95):
    """Student-t confidence interval of the mean; infinite for fewer than 2 values."""
    from scipy import stats

    values = np.asarray(values, dtype="float64")
    mean = float(values.mean())
    if len(values) < 2:
        return (-math.inf, math.inf)
    half = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return (mean - half, mean + half)


def bootstrap_interval(values, confidence=0.95, resamples=10000, seed=0):
    """Percentile bootstrap interval of the mean (fixed seed: reproducible)."""
    values = np.asarray(values, dtype="float64")
    if len(values) < 2:
        return (-math.inf, math.inf)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return (float(low), float(high))


def completed_rows(rows):
    """The completed rows; for Hyperband, only those trained the longest."""
    done = [r for r in rows if r["status"] == "completed"]
    if not done:
        return done
    longest = max(r["epochs"] or 0 for r in done)
    return [r for r in done if (r["epochs"] or 0) == longest]


def group_by_config(rows, column):
    """{(norm, order, rate): {seed: value}} over completed rows."""
    groups = {}
    for row in completed_rows(rows):
        if row[column] is not None:
            key = (row["norm"], row["order"], row["rate"])
            groups.setdefault(key, {})[row["seed"]] = row[column]
    return groups


def _best(keys, score, direction):
    """The key with the best score (ties: the first key, i.e. the lowest rate)."""
    sign = 1 if direction == "min" else -1
    return min(keys, key=lambda k: (sign * score(k), k[-1] if isinstance(k, tuple) else k))


def _verdict(mean, intervals, best_rate_with, large_shift):
    if any(low <= 0 <= high for low, high in intervals):
        return "keep"
    if mean < 0:
        if best_rate_with == 0:
            return "remove"
        return "significantly decrease" if -mean >= large_shift else "slightly decrease"
    return "significantly increase" if mean >= large_shift else "slightly increase"


@dataclasses.dataclass
class Recommendation:
    """What a study says about the dropout rate once batch norm is added.

    `str(recommendation)` is a short paragraph to paste into a notebook.
    Rates are dropout rates; `*_score` the metric's mean over seeds.
    """

    metric: str
    norm: str
    seeds: int
    best_rate_without: float
    best_score_without: float
    best_rate_with: float
    best_order_with: str
    best_score_with: float
    differences: dict
    mean_difference: float
    interval_t: tuple
    interval_bootstrap: tuple
    gap_without: float
    gap_with: float
    verdict: str
    notes: list
    study: dict = None

    def __str__(self):
        subject = ""
        if self.study:
            subject = f" for {self.study.get('model')} on {self.study.get('dataset')}"
        name = {"batch": "batch norm", "layer": "layer norm", "group": "group norm"}[self.norm]
        lo_t, hi_t = self.interval_t
        lo_b, hi_b = self.interval_bootstrap
        text = (
            f"Recommendation{subject} ({schema.metric(self.metric).title}, {self.seeds} paired seeds): "
            f"without {name} the best dropout rate is {self.best_rate_without:g} "
            f"({self.metric} {self.best_score_without:.4g}); with {name} "
            f"(order {self.best_order_with}) it is {self.best_rate_with:g} "
            f"({self.metric} {self.best_score_with:.4g}). Per seed, the best rate with {name} minus "
            f"the best rate without is {self.mean_difference:+.2f} on average "
            f"(95% interval t [{lo_t:+.2f}, {hi_t:+.2f}], bootstrap [{lo_b:+.2f}, {hi_b:+.2f}]). "
            f"Generalization gap (train - validation accuracy): {self.gap_without:.3f} without, "
            f"{self.gap_with:.3f} with {name}. "
        )
        if self.verdict == "keep":
            reach = max(abs(lo_t), abs(hi_t))
            rules_out = (
                "one seed cannot rule out any shift"
                if math.isinf(reach)
                else f"it still rules out shifts larger than {reach:.2f} in either direction"
            )
            text += f"Verdict: keep the dropout rate: the interval covers zero, so the data cannot tell; {rules_out}."
        elif self.verdict == "remove":
            text += f"Verdict: remove dropout when adding {name}."
        else:
            text += f"Verdict: {self.verdict} the dropout rate when adding {name} (to about {self.best_rate_with:g})."
        for note in self.notes:
            text += " " + note
        return text


def recommend(results, metric=schema.DEFAULT_METRIC, norm="batch", confidence=0.95, large_shift=0.2):
    """Turns a study's runs into a `Recommendation`.

    Args:
        results: rows from `Study.run()` / `kreg.tuning.results(directory)`,
            or a study directory.
        metric: "val_loss" (final-epoch validation loss, the default: accuracy
            ties across rates on small validation sets), "val_accuracy",
            "best_val_loss", "best_val_accuracy", "test_loss", "test_accuracy".
        norm: the normalization compared against no normalization.
        confidence: level of both intervals.
        large_shift: rate shift from which "slightly" becomes "significantly".

    Returns:
        A `Recommendation`.

    Example:

    ```python
    rec = kreg.tuning.recommend(kreg.tuning.results("kreg-study"))
    print(rec)
    ```
    """
    measure = schema.metric(metric)
    column, direction = measure.column, measure.direction
    checks.check_in_range("confidence", confidence, 0, 1)
    checks.check_positive("large_shift", large_shift)
    if isinstance(results, str):
        results = ledger.results(results)
    groups = group_by_config(results, column)
    without = {k: v for k, v in groups.items() if k[0] == "none"}
    with_norm = {k: v for k, v in groups.items() if k[0] == norm}
    if not without or not with_norm:
        raise ValueError(
            f"recommend needs completed runs both without normalization and with norm={norm!r}; "
            f"found norms {sorted({k[0] for k in groups})}"
        )

    def mean_score(key):
        return float(np.mean(list(groups[key].values())))

    best_without = _best(without, mean_score, direction)
    best_with = _best(with_norm, mean_score, direction)
    order = best_with[1]
    same_order = [k for k in with_norm if k[1] == order]
    paired = sorted(
        set.intersection(*(set(groups[k]) for k in without)) & set.intersection(*(set(groups[k]) for k in same_order))
    )
    if not paired:
        raise ValueError("recommend needs at least one seed run at every rate both with and without normalization")
    differences = {}
    for seed in paired:
        rate_without = _best(without, lambda k: groups[k][seed], direction)[2]
        rate_with = _best(same_order, lambda k: groups[k][seed], direction)[2]
        differences[seed] = round(rate_with - rate_without, 10)
    values = list(differences.values())
    mean = float(np.mean(values))
    interval_t = t_interval(values, confidence)
    interval_b = bootstrap_interval(values, confidence)
    verdict = _verdict(mean, (interval_t, interval_b), best_with[2], large_shift)

    def gap(key):
        return float(np.mean([r["gap"] for r in completed_rows(results) if (r["norm"], r["order"], r["rate"]) == key]))

    rates = sorted({k[2] for k in groups})
    notes = []
    for label, rate in (("without normalization", best_without[2]), (f"with norm={norm}", best_with[2])):
        if rate == rates[-1] and len(rates) > 1:
            notes.append(
                f"The best rate {label} ({rate:g}) sits on the upper edge of the grid: "
                f"widen the grid above {rate:g}."
            )
        elif rate == rates[0] and rate > 0 and len(rates) > 1:
            notes.append(
                f"The best rate {label} ({rate:g}) sits on the lower edge of the grid: "
                f"widen the grid below {rate:g}."
            )
    return Recommendation(
        metric=metric,
        norm=norm,
        seeds=len(paired),
        best_rate_without=best_without[2],
        best_score_without=mean_score(best_without),
        best_rate_with=best_with[2],
        best_order_with=order,
        best_score_with=mean_score(best_with),
        differences=differences,
        mean_difference=mean,
        interval_t=interval_t,
        interval_bootstrap=interval_b,
        gap_without=gap(best_without),
        gap_with=gap(best_with),
        verdict=verdict,
        notes=notes,
        study=getattr(results, "study", None),
    )
