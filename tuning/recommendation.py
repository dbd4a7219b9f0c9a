"""From a study's runs to a measured recommendation.

The question: with batch norm on, should the dropout rate change, by how
much, and in which block order? Every arm of the study (no normalization,
and the normalization in each block order) trained the same grid of rates
from the same initial weights for every seed, so the arms are paired by seed.

- Shift (`kreg.tuning.statistics.shift_estimate`): per arm, a quadratic
  through the seed-mean curve of the metric over the rates (on all rates
  when a lack-of-fit test lets it, else around the optimum); shift = optimum
  with the normalization - optimum without; a 95% leave-one-seed-out
  jackknife interval; the verdict on the scale `VERDICTS`
  (`statistics.verdict`). The shift is reported for every order.
- Order (`statistics.order_comparison`): each seed's rate picked by the other
  seeds' mean validation curve and scored on the test split, paired t tests
  between every pair of arms, Holm-adjusted.
- Sensitivity: the mean over seeds of the grid-argmin difference (the old
  estimator), printed for comparison.

The headline order is the order test's winner among the orders, else the
order with the best mean test score. Where a claim cannot be made (fewer than
3 paired seeds, fewer than 3 rates, no runs without normalization) the text
says so instead of printing an interval.

`recommend` takes rows from anywhere: a study's `Results`, a study directory,
a list of row dicts with the columns `status`, `norm`, `order`, `rate`,
`seed` and the metric's column, or a pandas DataFrame (e.g. read from a
`results.csv`).
"""

import base64
import dataclasses
import io
import math
import os

import numpy as np

from kreg import checks
from kreg.tuning import ledger
from kreg.tuning import schema
from kreg.tuning import statistics

VERDICTS = (
    "remove",
    "significantly decrease",
    "slightly decrease",
    "keep",
    "slightly increase",
    "significantly increase",
)
NORM_NAMES = {"batch": "batch norm", "layer": "layer norm", "group": "group norm"}
REQUIRED_COLUMNS = ("status", "norm", "order", "rate", "seed")
# The test-split column that scores an arm in the order test, per metric column.
TEST_COLUMNS = {
    "final_val_loss": "test_loss",
    "best_val_loss": "test_loss",
    "test_loss": "test_loss",
    "final_val_accuracy": "test_accuracy",
    "best_val_accuracy": "test_accuracy",
    "test_accuracy": "test_accuracy",
}


def t_interval(values, confidence=0.95):
    """Student-t confidence interval of the mean; infinite for fewer than 2 values."""
    from scipy import stats

    values = np.asarray(values, dtype="float64")
    mean = float(values.mean())
    if len(values) < 2:
        return (-math.inf, math.inf)
    half = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return (mean - half, mean + half)


def as_rows(results):
    """The row dicts of `results` (see the module docstring), checked.

    Raises:
        ValueError: a row lacks a required column (named), or `results` is
            of no known kind.
    """
    if isinstance(results, (str, os.PathLike)):
        return ledger.results(os.fspath(results))
    if hasattr(results, "to_dict") and hasattr(results, "columns"):  # a pandas DataFrame
        frame = results.astype(object).where(results.notna(), None)
        rows = frame.to_dict("records")
    elif isinstance(results, (list, tuple)):
        rows = list(results)
    else:
        raise checks.fail("results", "a study's rows, a study directory, a list of row dicts or a DataFrame", results)
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise checks.fail(f"results[{index}]", "a row dict", row)
        missing = [name for name in REQUIRED_COLUMNS if name not in row]
        if missing:
            raise ValueError(f"results[{index}] lacks the columns {missing} (a row needs {list(REQUIRED_COLUMNS)})")
    # A CSV round trip gives order NaN; the caller's rows are not changed.
    return [dict(row, order=None) if row.get("order") is None or row["norm"] == "none" else row for row in rows]


def completed_rows(rows):
    """The completed rows; for Hyperband, only those trained the longest."""
    done = [r for r in rows if r["status"] == "completed"]
    if not done:
        return done
    longest = max(r.get("epochs") or 0 for r in done)
    return [r for r in done if (r.get("epochs") or 0) == longest]


def group_by_config(rows, column):
    """{(norm, order, rate): {seed: value}} over completed rows."""
    groups = {}
    for row in completed_rows(rows):
        if row.get(column) is not None:
            key = (row["norm"], row["order"], row["rate"])
            groups.setdefault(key, {})[row["seed"]] = row[column]
    return groups


def _label(arm):
    norm, order = arm
    return "none" if norm == "none" else order


@dataclasses.dataclass
class OrderShift:
    """The shift of one block order against no normalization.

    Attributes:
        order: the block order.
        estimate: the `statistics.ShiftEstimate`.
        verdict: the `statistics.Verdict`.
    """

    order: str
    estimate: statistics.ShiftEstimate
    verdict: statistics.Verdict


@dataclasses.dataclass
class Recommendation:
    """What a study says about the dropout rate once a normalization is added.

    `str(recommendation)` is a short paragraph; in Jupyter it shows as that
    paragraph, a table of the arms and a plot of their curves. Rates are
    dropout rates; scores are the metric's mean over the paired seeds.

    Attributes:
        metric: the metric name.
        norm: the normalization compared with none.
        seeds: the number of paired seeds.
        rates: the grid.
        curves: arm label ("none" or an order) -> the mean metric per rate.
        best_rate_without, best_score_without: the grid's best rate without
            normalization and its score (None without such runs).
        best_order_with: the headline order.
        best_rate_with, best_score_with: its grid's best rate and score.
        shift, interval: the headline order's shift of the fitted optimum and
            its 95% interval (None where it cannot be estimated).
        optimum_without, optimum_with: the fitted optima.
        verdict: one of `VERDICTS`, "keep (no dropout either way)", "widen
            the grid", or why there is none ("too few ...").
        reason: why the verdict.
        shifts: order -> `OrderShift`, for every order.
        order_comparison: the `statistics.OrderComparison` (None below 2
            arms or 2 paired seeds).
        differences: seed -> the grid-argmin difference (sensitivity).
        mean_difference: their mean.
        gap_without, gap_with: mean train - validation accuracy at the best
            rates (None where there is no accuracy).
        notes: further sentences.
        study: the study description, if known.
    """

    metric: str
    norm: str
    seeds: int
    rates: tuple
    curves: dict
    best_rate_without: float
    best_score_without: float
    best_order_with: str
    best_rate_with: float
    best_score_with: float
    shift: float
    interval: tuple
    optimum_without: float
    optimum_with: float
    verdict: str
    reason: str
    shifts: dict
    order_comparison: object
    differences: dict
    mean_difference: float
    gap_without: float
    gap_with: float
    notes: list
    study: dict = None

    def __str__(self):
        return " ".join(self._sentences())

    def _sentences(self):
        measure = schema.metric(self.metric)
        name = NORM_NAMES[self.norm]
        subject = f" for {self.study.get('model')} on {self.study.get('dataset')}" if self.study else ""
        grid = ", ".join(f"{r:g}" for r in self.rates)
        yield (
            f"Recommendation{subject} ({measure.title}, {self.seeds} paired seeds, rates {grid}):"
        )
        if self.best_rate_without is not None:
            yield (
                f"without {name} the best dropout rate on the grid is {self.best_rate_without:g} "
                f"({self.metric} {self.best_score_without:.4g});"
            )
        yield (
            f"with {name} (order {self.best_order_with}) it is {self.best_rate_with:g} "
            f"({self.metric} {self.best_score_with:.4g})."
        )
        headline = self.shifts.get(self.best_order_with)
        if headline is None:
            yield f"Verdict: none: {self.reason}."
        else:
            yield from self._shift_sentences(headline, name, headline=True)
        for order, other in self.shifts.items():
            if order != self.best_order_with:
                yield from self._shift_sentences(other, name, headline=False)
        if self.order_comparison is not None:
            yield self._order_sentence()
        if self.differences:
            yield (
                f"Sensitivity: the per-seed best grid rates differ by {self.mean_difference:+.2f} on average "
                "(grid argmins, no fit)."
            )
        if self.gap_without is not None and self.gap_with is not None:
            yield (
                f"Generalization gap (train - validation accuracy): {self.gap_without:.3f} without, "
                f"{self.gap_with:.3f} with {name}."
            )
        yield from self.notes

    def _shift_sentences(self, order_shift, name, headline):
        estimate, verdict = order_shift.estimate, order_shift.verdict
        fit = "quadratics on all rates" if not estimate.refine else "local quadratics around each optimum"
        where = f"with order {order_shift.order}"
        text = (
            f"Fitted optimum {estimate.optimum_without:.2f} without and {estimate.optimum_with:.2f} {where}: "
            f"shift {estimate.shift:+.2f}"
        )
        if estimate.interval is not None:
            low, high = estimate.interval
            text += f" (95% jackknife interval [{low:+.2f}, {high:+.2f}], {fit})"
        else:
            text += f" ({estimate.reason})"
        if not headline:
            yield f"{text}: {verdict.label}."
            return
        yield text + "."
        label = verdict.label
        if label == "keep":
            detail = "the interval covers zero" if estimate.interval[0] <= 0 <= estimate.interval[1] else verdict.reason
            sentence = f"Verdict: keep the dropout rate when adding {name}: {detail}"
            low, high = estimate.interval
            if high - low > 1e-9:
                sentence += f"; shifts below {low:+.2f} or above {high:+.2f} are unlikely"
            else:
                sentence += "; every seed found the same optimum, so the interval's width says little"
            yield sentence + "."
        elif label == "remove":
            yield f"Verdict: remove dropout when adding {name}."
        elif label in VERDICTS:
            yield f"Verdict: {label} the dropout rate when adding {name} (to about {estimate.optimum_with:.2f})."
        elif label == "widen the grid":
            top = self.rates[-1]
            yield f"No verdict: {verdict.reason}; widen the grid above {top:g}."
        elif label == "keep (no dropout either way)":
            yield f"Verdict: no dropout, with or without {name}: {verdict.reason}."
        else:
            yield f"No verdict: {label} ({verdict.reason})."
        if estimate.refine:
            yield f"The quadratic did not fit the whole grid: {estimate.advice}."

    def _order_sentence(self):
        comparison = self.order_comparison
        pairs = "; ".join(
            f"{pair.first} vs {pair.second}: {pair.mean_difference:+.4f} (adjusted p {pair.p_adjusted:.2g})"
            for pair in comparison.pairs
        )
        test = TEST_COLUMNS[schema.metric(self.metric).column].replace("_", " ")
        if comparison.winner == "none":
            return f"Order: no normalization wins on {test} at the rates the other seeds choose ({pairs})."
        if comparison.winner is not None:
            return f"Order: {comparison.winner} wins on {test} at the rates the other seeds choose ({pairs})."
        return f"Order: the data cannot tell the arms apart on {test} ({pairs}; Holm-adjusted paired t tests)."

    def table(self):
        """Rows of the arms: label, best grid rate, its score, fitted optimum."""
        rows = []
        for label, curve in self.curves.items():
            best = int(np.argmin(curve) if schema.metric(self.metric).direction == "min" else np.argmax(curve))
            shift = self.shifts.get(label)
            fitted = None
            if label == "none" and self.shifts:
                fitted = next(iter(self.shifts.values())).estimate.optimum_without
            elif shift is not None:
                fitted = shift.estimate.optimum_with
            rows.append({"arm": label, "best_rate": self.rates[best], "score": curve[best], "optimum": fitted})
        return rows

    def _plot_png(self):
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.6), dpi=90)
        for label, curve in self.curves.items():
            ax.plot(self.rates, curve, marker="o", label="no norm" if label == "none" else label)
        ax.set_xlabel("dropout rate")
        ax.set_ylabel(schema.metric(self.metric).title)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        return buffer.getvalue()

    def _repr_markdown_(self):
        lines = [str(self), "", "| arm | best rate | " + self.metric + " | fitted optimum |", "|---|---|---|---|"]
        for row in self.table():
            fitted = "" if row["optimum"] is None else f"{row['optimum']:.2f}"
            lines.append(f"| {row['arm']} | {row['best_rate']:g} | {row['score']:.4g} | {fitted} |")
        image = base64.b64encode(self._plot_png()).decode("ascii")
        lines += ["", f"![{self.metric} vs dropout rate](data:image/png;base64,{image})"]
        return "\n".join(lines)


def _matrix(groups, arm, rates, seeds):
    return np.array([[groups[(*arm, rate)][seed] for rate in rates] for seed in seeds], dtype="float64")


def recommend(results, metric=schema.DEFAULT_METRIC, norm="batch", min_effect=statistics.MIN_EFFECT, large_shift=statistics.LARGE_SHIFT):
    """Turns a study's runs into a `Recommendation`.

    Args:
        results: a study's rows (`Study.run()`, `kreg.tuning.results`), a
            study directory, a list of row dicts or a pandas DataFrame (see
            the module docstring).
        metric: "val_loss" (final-epoch validation loss, the default:
            accuracy ties across rates on small validation sets),
            "val_accuracy", "best_val_loss", "best_val_accuracy", "test_loss",
            "test_accuracy".
        norm: the normalization compared with none.
        min_effect: shifts smaller than this are "keep" (rates, default 0.05).
        large_shift: from this size on a shift is "significant" (default 0.2).

    Returns:
        A `Recommendation`.

    Raises:
        ValueError: bad arguments, or no completed run with `norm`.

    Example:

    ```python
    rec = kreg.tuning.recommend(kreg.tuning.results("kreg-study"))
    print(rec)
    ```
    """
    measure = schema.metric(metric)
    norm = checks.check_choice("norm", norm, tuple(NORM_NAMES))
    min_effect = checks.check_positive("min_effect", min_effect)
    large_shift = checks.check_positive("large_shift", large_shift)
    rows = as_rows(results)
    sign = 1.0 if measure.direction == "min" else -1.0
    groups = group_by_config(rows, measure.column)
    tests = group_by_config(rows, TEST_COLUMNS[measure.column])
    arms = sorted({(k[0], k[1]) for k in groups if k[0] in ("none", norm)}, key=lambda a: (a[0] != "none", str(a[1])))
    with_norm = [arm for arm in arms if arm[0] == norm]
    if not with_norm:
        found = sorted({k[0] for k in groups})
        raise ValueError(f"recommend needs completed runs with norm={norm!r}; found completed runs of norms {found}")
    rates = tuple(sorted({k[2] for k in groups if (k[0], k[1]) in arms}))
    # Paired seeds: those with a value at every rate of every arm.
    per_arm = {arm: set.intersection(*(set(groups.get((*arm, r), {})) for r in rates)) for arm in arms}
    complete = [arm for arm in arms if per_arm[arm]]
    seeds = sorted(set.intersection(*(per_arm[arm] for arm in complete))) if complete else []
    notes = []
    curves = {}
    for arm in arms:
        means = [float(np.mean(list(groups[(*arm, r)].values()))) if (*arm, r) in groups else math.nan for r in rates]
        curves[_label(arm)] = means

    def best(arm):
        curve = np.array(curves[_label(arm)]) * sign
        index = int(np.nanargmin(curve))
        return rates[index], curves[_label(arm)][index]

    baseline = ("none", None) if ("none", None) in arms else None
    shifts = {}
    reason = ""
    if baseline is None:
        reason = "no runs without normalization, so no shift can be estimated"
        notes.append(
            f"No runs without normalization: the study cannot say how {NORM_NAMES[norm]} changes the best rate, "
            "only which rate and order work best with it."
        )
    elif len(rates) < 3:
        reason = f"the shift needs at least 3 rates, the grid has {len(rates)}"
    elif len(seeds) < 1:
        reason = "no seed ran every rate of every arm (unpaired runs, e.g. a random search)"
    else:
        without = _matrix(groups, baseline, rates, seeds) * sign
        for arm in with_norm:
            estimate = statistics.shift_estimate(rates, without, _matrix(groups, arm, rates, seeds) * sign)
            verdict = statistics.verdict(estimate, rates, min_effect=min_effect, large_shift=large_shift)
            shifts[arm[1]] = OrderShift(arm[1], estimate, verdict)

    comparison = None
    tested = [arm for arm in arms if all(seed in tests.get((*arm, r), {}) for r in rates for seed in seeds)]
    if len(tested) >= 2 and len(seeds) >= 2 and len(rates) >= 3:
        comparison = statistics.order_comparison(
            {_label(arm): _matrix(groups, arm, rates, seeds) * sign for arm in tested},
            {_label(arm): _matrix(tests, arm, rates, seeds) * (1.0 if TEST_COLUMNS[measure.column].endswith("loss") else -1.0) for arm in tested},
            rates,
        )
    headline = _headline(with_norm, comparison)
    if headline not in shifts and not reason:
        reason = "fewer than 3 paired seeds for a verdict"
    rate_with, score_with = best(headline)
    rate_without, score_without = best(baseline) if baseline else (None, None)
    estimate = shifts[headline[1]].estimate if headline[1] in shifts else None
    verdict = shifts[headline[1]].verdict if estimate is not None else statistics.Verdict("no verdict", reason)
    if estimate is not None and estimate.interval is None:
        reason = estimate.reason
    differences = {}
    if estimate is not None:
        differences = {seed: round(d, 10) for seed, d in zip(seeds, estimate.grid_shifts)}

    def gap(arm, rate):
        values = [r.get("gap") for r in completed_rows(rows) if (r["norm"], r["order"], r["rate"]) == (*arm, rate)]
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    return Recommendation(
        metric=measure.name,
        norm=norm,
        seeds=len(seeds),
        rates=rates,
        curves=curves,
        best_rate_without=rate_without,
        best_score_without=score_without,
        best_order_with=headline[1],
        best_rate_with=rate_with,
        best_score_with=score_with,
        shift=None if estimate is None else estimate.shift,
        interval=None if estimate is None else estimate.interval,
        optimum_without=None if estimate is None else estimate.optimum_without,
        optimum_with=None if estimate is None else estimate.optimum_with,
        verdict=verdict.label,
        reason=verdict.reason or reason,
        shifts=shifts,
        order_comparison=comparison,
        differences=differences,
        mean_difference=float(np.mean(list(differences.values()))) if differences else None,
        gap_without=gap(baseline, rate_without) if baseline else None,
        gap_with=gap(headline, rate_with),
        notes=notes,
        study=getattr(results, "study", None),
    )


def _headline(with_norm, comparison):
    """The order the headline is about: the order test's winner among the
    orders, else the order with the best mean test score, else the first."""
    if comparison is None:
        return with_norm[0]
    scores = {arm: comparison.mean_scores[arm[1]] for arm in with_norm if arm[1] in comparison.mean_scores}
    if comparison.winner in {arm[1] for arm in with_norm}:
        return next(arm for arm in with_norm if arm[1] == comparison.winner)
    return min(scores, key=scores.get) if scores else with_norm[0]
