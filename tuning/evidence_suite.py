"""`evidence`: a fixed suite of studies pooled into one answer.

The question: *with batch norm, should my dropout rate change, and which
block order?* One study (`kreg.tuning.Study`) answers it for one model on one
dataset. `evidence()` runs a fixed, documented suite of such studies and pools
them, so that the answer says what holds across models and data, and where
it does not.

The suite (`SUITE`)
-------------------

Every setting is a zoo model that accepts `norm` and `order` overrides (so
not `snn`, which is SELU + alpha dropout without normalization by design,
nor `dropconnect_mlp`, whose DropConnect layers have no block order) on a
dataset available offline. Every setting has the same grid: rates 0..0.6 in
steps of 0.1, no normalization and batch norm in the orders
"norm-act-drop" and "act-norm-drop", 5 paired seeds, packed training. The
epochs are chosen per setting so that the model starts to overfit (dropout
can matter; undertrained, rate 0 wins everywhere) while the whole suite
stays within about 20 minutes on 2 CPU cores; see the table in `SUITE`.
`QUICK_SUITE` is a tiny version (3 rates, 3 seeds, 2 epochs, small widths)
for `kreg evidence --quick` and the tests.

Every setting's study lives in `directory/<setting name>/`, so a suite is
resumable like any study: a second call trains nothing recorded and only
pools again.

Per setting (`kreg.tuning.recommend`, metric "val_loss")
--------------------------------------------------------

For every order: the shift of the fitted optimal rate (with batch norm -
without), its leave-one-seed-out jackknife standard error `estimate.se` and
95% interval, and the setting's verdict (`kreg.tuning.statistics.verdict`).
The order test (`statistics.order_comparison`): each seed's test loss at the
rate the other seeds choose, per arm; the winner or none.

Flagging: a (setting, order) is left out of the pool, with the reason in the
table and the report, when

- its verdict is "widen the grid": an optimum sits on the upper edge of the
  grid, so the shift is censored there and its size unknown;
- its estimate has no interval (fewer than 3 paired seeds) or no shift at
  all (the recommendation says why).

An optimum at rate 0 is not flagged: 0 is the end of the scale, not of the
grid, and "no dropout" is a real answer. A standard error below `SE_FLOOR`
grid steps (a quarter step) is raised to it for the pooling weights, and
marked: a jackknife of seeds that all agree (e.g. optima clipped at rate 0)
gives 0, which would be an infinite weight.

Pooling (`kreg.tuning.statistics.pool`; formulas in that module's docstring, step 7)
-----------------------------------------------------------------------------------

Per order, the shifts of the kept settings are pooled with random effects:
DerSimonian-Laird tau^2, the Hartung-Knapp-Sidik-Jonkman 95% interval of the
mean shift, Cochran's Q, I^2 and, for k >= 5 kept settings, the 95%
prediction interval of the shift in a new setting. The answer per order:

- k < 2: nothing to pool;
- k < 5: "depends on the model and data": no prediction interval;
- the prediction interval excludes 0: the general answer, "decrease" or
  "increase" the rate by about |mean|, "slightly" below `statistics.LARGE_SHIFT` (0.2,
  as in the per-setting verdicts), else "significantly";
- the prediction interval lies within +-min_effect (0.05): "keep", in
  general: whatever the setting, the change is too small to act on;
- else "depends on the model and data", naming the settings that shift down,
  keep, or shift up, and whether the mean over these settings is nonzero.

The order: per setting the order test's winner ("none" when no
normalization wins, or no winner), counted across settings; and for every
pair of orders the per-setting paired mean difference of the order test's
scores (test loss, first order - second; its standard error sd / sqrt(n)
over the seeds) pooled the same way. Test losses of different datasets have
different scales: the pool says whether one order is better on average and
how much the settings disagree (tau^2, I^2), in test-loss units.

Example:

```python
from kreg import tuning

result = tuning.evidence("kreg-evidence", quick=True)
result.write("kreg-evidence")     # evidence.md, evidence.json, forest.png
print(result)
```
"""

import dataclasses
import itertools
import json
import math
import os
import shlex
import time

import numpy as np

from kreg import checks
from kreg.tuning import ledger
from kreg.tuning import recommendation as recommendation_module
from kreg.tuning import schema
from kreg.tuning import statistics

EVIDENCE_FILES = ("evidence.md", "evidence.json", "forest.png")
RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
NORMS = (None, "batch")
ORDERS = ("norm-act-drop", "act-norm-drop")
SEEDS = 5
# Standard errors below this many grid steps are raised to it for pooling.
SE_FLOOR = 0.25
NORM = "batch"


@dataclasses.dataclass(frozen=True)
class Setting:
    """One study of the suite: a zoo model on a dataset, and its grid.

    Attributes:
        name: the setting's name, also its study folder.
        model: a zoo model name (it must accept `norm` and `order`).
        dataset: a `kreg.datasets.load` name.
        epochs: epochs per run.
        rates, norms, orders, seeds: the grid (see `kreg.tuning.SearchSpace`).
        batch_size: training batch size.
        model_kwargs: fixed builder overrides (e.g. `{"width": 32}`).
        why: why the setting is in the suite, and its epochs.
    """

    name: str
    model: str
    dataset: str
    epochs: int
    rates: tuple = RATES
    norms: tuple = NORMS
    orders: tuple = ORDERS
    seeds: int = SEEDS
    batch_size: int = 32
    model_kwargs: dict = None
    why: str = ""

    def runs(self):
        """The number of runs of the setting's grid."""
        arms = sum(len(self.orders) if norm is not None else 1 for norm in self.norms)
        return arms * len(self.rates) * self.seeds

    def study(self, directory, quiet=False):
        """The setting's `kreg.tuning.Study` in `directory`."""
        from kreg.tuning import study as study_module

        return study_module.Study(
            model=self.model,
            dataset=self.dataset,
            directory=directory,
            rates=self.rates,
            norms=self.norms,
            orders=self.orders,
            seeds=self.seeds,
            epochs=self.epochs,
            batch_size=self.batch_size,
            model_kwargs=dict(self.model_kwargs) if self.model_kwargs else None,
            quiet=quiet,
        )

    def describe(self):
        """The setting as a JSON-ready dict."""
        return {
            "name": self.name,
            "model": self.model,
            "dataset": self.dataset,
            "epochs": self.epochs,
            "rates": list(self.rates),
            "norms": ["none" if n is None else n for n in self.norms],
            "orders": list(self.orders),
            "seeds": self.seeds,
            "batch_size": self.batch_size,
            "model_kwargs": dict(self.model_kwargs or {}),
            "runs": self.runs(),
            "why": self.why,
        }


# Measured on the 2 shared CPU cores (TensorFlow, packed, load average about
# 4 from other work, so roughly twice an idle machine's time), per setting's
# 105 runs: mlp-digits 54 s, mlp-wine 66 s, mlp-breast_cancer 103 s,
# mlp-mnist1d 217 s, convnet-digits 320 s; cnn1d-mnist1d at 16 channels and
# 10 epochs about 600 s (half its runs in 5 minutes), hence 6 epochs here
# (estimated 360 s). Whole suite: about 19 minutes on the busy machine.
# cnn1d at its default 25 channels and 20 epochs took over 10 minutes alone.
# At 10 epochs the convnet is still undertrained (rate 0 is best in every
# arm); more epochs would make it informative but cost about 30 s each.
SUITE = (
    Setting("mlp-digits", "mlp", "digits", epochs=20,
            why="the default study: the MLP starts to overfit at about 20 epochs"),
    Setting("mlp-breast_cancer", "mlp", "breast_cancer", epochs=40,
            why="binary, 569 x 30: 15 steps an epoch, so 40 epochs; optimum inside the grid"),
    Setting("mlp-wine", "mlp", "wine", epochs=60,
            why="178 x 13: 4 steps an epoch, so 60 epochs"),
    Setting("mlp-mnist1d", "mlp", "mnist1d", epochs=20,
            why="MNIST-1D as vectors (5000 x 40): hard for an MLP, dropout mostly hurts"),
    Setting("cnn1d-mnist1d", "cnn1d", "mnist1d", epochs=6, model_kwargs={"channels": 16},
            why="the paper's 1-D conv net, dropout in every block; 16 channels and 6 epochs to fit the time"),
    Setting("convnet-digits", "convnet", "digits", epochs=10, model_kwargs={"width": 8},
            why="a 2-D conv net on the 8x8 images; width 8 and 10 epochs to fit the time"),
)
# Estimated minutes of the full suite on 2 busy CPU cores (sum of the measured settings).
SUITE_MINUTES = 19

QUICK_RATES = (0.0, 0.25, 0.5)
QUICK_SUITE = (
    Setting("quick-mlp-wine", "mlp", "wine", epochs=2, rates=QUICK_RATES, seeds=3,
            model_kwargs={"width": 8, "depth": 1}, why="tiny: a check that the pipeline runs"),
    Setting("quick-mlp-breast_cancer", "mlp", "breast_cancer", epochs=2, rates=QUICK_RATES, seeds=3,
            model_kwargs={"width": 8, "depth": 1}, why="tiny: a check that the pipeline runs"),
)


# --- per-setting results -------------------------------------------------


@dataclasses.dataclass
class SettingShift:
    """One setting's shift in one order, and whether it is pooled.

    Attributes:
        setting: the setting's name.
        order: the block order.
        shift: fitted optimum with batch norm - without (None if none).
        se: the jackknife standard error (None without an interval).
        weight_se: the standard error the pool uses (`se`, floored), None
            when left out.
        interval: the 95% jackknife interval (None without one).
        optimum_without, optimum_with: the fitted optima.
        verdict: the setting's verdict label.
        included: whether the shift is pooled.
        flag: why it is left out, or a note ("se floored"); "" otherwise.
    """

    setting: str
    order: str
    shift: float
    se: float
    weight_se: float
    interval: tuple
    optimum_without: float
    optimum_with: float
    verdict: str
    included: bool
    flag: str


@dataclasses.dataclass
class SettingOrder:
    """One setting's order test.

    Attributes:
        setting: the setting's name.
        winner: the winning arm ("none" is no normalization, else an order),
            or None when the test cannot tell the arms apart.
        mean_scores: arm -> mean test loss at the rates the other seeds choose.
        differences: "first - second" -> (mean paired difference of the
            scores, its standard error, seeds), for every pair of orders.
    """

    setting: str
    winner: str
    mean_scores: dict
    differences: dict


@dataclasses.dataclass
class PooledShift:
    """The pool of one order's shifts.

    Attributes:
        order: the block order.
        pooled: the `statistics.Pooled` (None below 2 kept settings).
        included: the pooled settings.
        excluded: setting -> why it is left out.
        general: True when the answer holds in general (the prediction
            interval excludes 0, or lies within +-min_effect).
        answer: one sentence.
    """

    order: str
    pooled: statistics.Pooled
    included: list
    excluded: dict
    general: bool
    answer: str


@dataclasses.dataclass
class PooledOrder:
    """The pool of the paired test-loss differences of two orders (first - second)."""

    first: str
    second: str
    pooled: statistics.Pooled
    included: list
    excluded: dict
    answer: str


def _fmt(value, spec="+.3f"):
    return "-" if value is None else format(value, spec)


def _interval(interval, spec="+.3f"):
    return "-" if interval is None else f"[{interval[0]:{spec}}, {interval[1]:{spec}}]"


def _clean(value):
    """`value` with round-off zeros as 0.0 (no "-0.00" in the text)."""
    return 0.0 if abs(value) < statistics.ZERO else value


def _grid_step(rates):
    return float(np.min(np.diff(np.asarray(rates, dtype="float64")))) if len(rates) > 1 else 0.0


def setting_shifts(name, rec):
    """The `SettingShift` of every order of one setting's `Recommendation`."""
    floor = SE_FLOOR * _grid_step(rec.rates)
    orders = _ordered(rec.shifts) or [rec.best_order_with]
    table = []
    for order in orders:
        order_shift = rec.shifts.get(order)
        if order_shift is None:
            table.append(SettingShift(name, order, None, None, None, None, None, None, rec.verdict, False,
                                      f"no shift: {rec.reason}"))
            continue
        estimate, verdict = order_shift.estimate, order_shift.verdict
        flag, included, weight_se = "", True, None
        if verdict.label == "widen the grid":
            flag, included = f"widen the grid: {verdict.reason}", False
        elif estimate.interval is None or estimate.se is None or not math.isfinite(estimate.se):
            flag, included = f"no interval: {estimate.reason or verdict.reason}", False
        else:
            weight_se = max(estimate.se, floor)
            if estimate.se < floor:
                flag = f"se {estimate.se:.3g} floored to {floor:.3g}"
        table.append(
            SettingShift(
                setting=name,
                order=order,
                shift=_clean(float(estimate.shift)),
                se=estimate.se,
                weight_se=weight_se,
                interval=estimate.interval,
                optimum_without=float(estimate.optimum_without),
                optimum_with=float(estimate.optimum_with),
                verdict=verdict.label,
                included=included,
                flag=flag,
            )
        )
    return table


def _ordered(orders):
    """`orders` in a fixed order: those of `ORDERS` first, then the others sorted."""
    orders = set(orders)
    return [o for o in ORDERS if o in orders] + sorted(orders - set(ORDERS))


def setting_order(name, rec):
    """The `SettingOrder` of one setting's `Recommendation` (None without an order test).

    Differences are "first - second" for every pair of orders, in `_ordered` order.
    """
    comparison = rec.order_comparison
    if comparison is None:
        return None
    orders = _ordered(label for label in comparison.scores if label != "none")
    differences = {}
    for first, second in itertools.combinations(orders, 2):
        d = np.asarray(comparison.scores[first]) - np.asarray(comparison.scores[second])
        se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) >= 2 else None
        differences[f"{first} - {second}"] = (float(d.mean()), se, len(d))
    return SettingOrder(name, comparison.winner, dict(comparison.mean_scores), differences)


# --- pooling ---------------------------------------------------------------


def _shift_answer(order, pooled, included, shifts, min_effect):
    """One sentence: the pooled answer for `order`, and whether it is general."""
    where = f"With batch norm in order {order}"
    if pooled is None:
        return False, (
            f"{where}: {len(included)} setting(s) left to pool, at least 2 are needed: "
            "no answer across settings."
        )
    mean = (f"pooled shift {pooled.mean:+.3f}, 95% interval {_interval(pooled.interval)}, "
            f"tau^2 {pooled.tau2:.3g}, I^2 {pooled.i2:.0%}, k = {pooled.k}")
    by_direction = {"down": [], "keep": [], "up": []}
    for row in shifts:
        if row.included:
            low, high = row.interval
            side = "keep" if (low <= 0 <= high or abs(row.shift) < min_effect) else ("down" if row.shift < 0 else "up")
            by_direction[side].append(f"{row.setting} ({row.shift:+.2f})")
    which = "; ".join(
        f"{label}: {', '.join(names)}"
        for label, names in (("lower", by_direction["down"]), ("keep", by_direction["keep"]), ("higher", by_direction["up"]))
        if names
    )
    on_average = ""
    low, high = pooled.interval
    if low > 0 or high < 0:
        on_average = f" On average over these settings the rate moves {'down' if high < 0 else 'up'} ({mean})"
    else:
        on_average = f" The mean over these settings is not distinguishable from 0 ({mean})"
    if pooled.prediction_interval is None:
        return False, (
            f"{where}: depends on the model and data: {pooled.k} settings pooled, a prediction interval "
            f"for a new setting needs at least {statistics.MIN_STUDIES_FOR_PREDICTION}.{on_average}. "
            f"Per setting: {which}."
        )
    p_low, p_high = pooled.prediction_interval
    prediction = f"95% prediction interval for a new setting {_interval(pooled.prediction_interval)}"
    if p_low > 0 or p_high < 0:
        direction = "decrease" if p_high < 0 else "increase"
        size = "slightly" if abs(pooled.mean) < statistics.LARGE_SHIFT else "significantly"
        return True, (
            f"{where}: {size} {direction} the dropout rate, by about {abs(pooled.mean):.2f} "
            f"({mean}; the {prediction} excludes 0)."
        )
    if -min_effect <= p_low and p_high <= min_effect:
        return True, (
            f"{where}: keep the dropout rate: the {prediction} lies within +-{min_effect:g}, "
            f"a change too small to act on ({mean})."
        )
    return False, (
        f"{where}: depends on the model and data: the {prediction} covers 0.{on_average}. "
        f"Per setting: {which}."
    )


def pool_shifts(shifts, orders=None, min_effect=statistics.MIN_EFFECT):
    """Pools per-setting shifts per order.

    Args:
        shifts: `SettingShift`s (any settings, any orders).
        orders: the orders to pool (default: those in `shifts`, first seen first).
        min_effect: shifts smaller than this are not worth acting on.

    Returns:
        order -> `PooledShift`.
    """
    orders = orders or _ordered(row.order for row in shifts)
    result = {}
    for order in orders:
        rows = [row for row in shifts if row.order == order]
        kept = [row for row in rows if row.included]
        pooled = None
        if len(kept) >= 2:
            pooled = statistics.pool([r.shift for r in kept], [r.weight_se for r in kept])
        general, answer = _shift_answer(order, pooled, kept, rows, min_effect)
        result[order] = PooledShift(
            order=order,
            pooled=pooled,
            included=[r.setting for r in kept],
            excluded={r.setting: r.flag for r in rows if not r.included},
            general=general,
            answer=answer,
        )
    return result


def pool_orders(order_results):
    """Pools the per-setting paired test-loss differences of every pair of orders.

    Args:
        order_results: `SettingOrder`s (None entries are skipped).

    Returns:
        "first - second" -> `PooledOrder`.
    """
    order_results = [o for o in order_results if o is not None]
    pairs = list(dict.fromkeys(key for o in order_results for key in o.differences))
    result = {}
    for pair in pairs:
        first, second = pair.split(" - ")
        kept, excluded = [], {}
        for o in order_results:
            if pair not in o.differences:
                continue
            mean, se, n = o.differences[pair]
            if se is None or not (se > 0 and math.isfinite(se)):
                excluded[o.setting] = "identical paired scores: no standard error"
            else:
                kept.append((o.setting, mean, se))
        pooled = statistics.pool([k[1] for k in kept], [k[2] for k in kept]) if len(kept) >= 2 else None
        result[pair] = PooledOrder(first, second, pooled, [k[0] for k in kept], excluded, _order_answer(first, second, pooled, len(kept)))
    return result


def _order_answer(first, second, pooled, k):
    if pooled is None:
        return f"{first} vs {second}: {k} setting(s) with paired test scores, at least 2 are needed to pool."
    text = (
        f"{first} - {second} test loss: pooled {pooled.mean:+.4f}, 95% interval {_interval(pooled.interval, '+.4f')}, "
        f"tau^2 {pooled.tau2:.3g}, I^2 {pooled.i2:.0%}, k = {pooled.k}"
    )
    better = first if pooled.mean < 0 else second
    low, high = pooled.interval
    if pooled.prediction_interval is not None:
        p_low, p_high = pooled.prediction_interval
        text += f", prediction interval {_interval(pooled.prediction_interval, '+.4f')}"
        if p_low > 0 or p_high < 0:
            return f"{text}: {better} is better in general (the prediction interval excludes 0)."
    if low > 0 or high < 0:
        return f"{text}: {better} is better on average over these settings, not necessarily in a new one."
    return f"{text}: neither order is better on average."


def _winner_summary(order_results, orders):
    results = [o for o in order_results if o is not None]
    counts = {label: 0 for label in (*orders, "none", None)}
    for o in results:
        counts[o.winner] = counts.get(o.winner, 0) + 1
    parts = [f"{label} in {counts[label]}" for label in orders]
    parts.append(f"no normalization in {counts['none']}")
    parts.append(f"no winner in {counts[None]}")
    return f"Order test winners over {len(results)} settings: " + ", ".join(parts) + "."


# --- the evidence ------------------------------------------------------------


@dataclasses.dataclass
class Evidence:
    """A suite of studies pooled into one answer.

    `str(evidence)` is the answer: per order the pooled shift and whether it
    holds in general, then the order summary.

    Attributes:
        suite: the `Setting`s (None where built from recommendations alone).
        quick: whether it is the quick suite.
        directory: where the studies live.
        metric: the metric of the recommendations.
        shifts: the per-setting table, `SettingShift` per (setting, order).
        orders: the per-setting order tests, `SettingOrder` per setting (None
            where a setting has none).
        pooled: order -> `PooledShift`.
        order_pooled: "first - second" -> `PooledOrder`.
        recommendations: setting -> `Recommendation`.
        wall_time: seconds of the `evidence()` call.
        training_time: seconds of training recorded in the rows (all sessions).
        runs: rows of every study.
        command: the command that reproduces it.
    """

    suite: tuple
    quick: bool
    directory: str
    metric: str
    shifts: list
    orders: list
    pooled: dict
    order_pooled: dict
    recommendations: dict
    wall_time: float = None
    training_time: float = None
    runs: int = None
    command: str = None

    def answer_lines(self):
        """The answer, one sentence per line."""
        lines = [pooled.answer for pooled in self.pooled.values()]
        excluded = sorted({(s, why) for p in self.pooled.values() for s, why in p.excluded.items()})
        for setting, why in excluded:
            lines.append(f"Left out of the pool: {setting}: {why}.")
        order_names = list(self.pooled) or list(dict.fromkeys(s.order for s in self.shifts))
        lines.append(_winner_summary(self.orders, order_names))
        lines.extend(p.answer for p in self.order_pooled.values())
        return lines

    def __str__(self):
        return "\n".join(self.answer_lines())

    def to_dict(self):
        """Every number, JSON-ready (inf and nan as None)."""
        def pooled_dict(pooled):
            return None if pooled is None else dataclasses.asdict(pooled)

        data = {
            "question": "with batch norm, should my dropout rate change, and which block order?",
            "quick": self.quick,
            "directory": self.directory,
            "metric": self.metric,
            "command": self.command,
            "wall_time": self.wall_time,
            "training_time": self.training_time,
            "runs": self.runs,
            "se_floor_steps": SE_FLOOR,
            "suite": [s.describe() for s in self.suite] if self.suite else None,
            "settings": [dataclasses.asdict(row) for row in self.shifts],
            "order_tests": [dataclasses.asdict(o) for o in self.orders if o is not None],
            "pooled": {
                order: {**dataclasses.asdict(p), "pooled": pooled_dict(p.pooled)} for order, p in self.pooled.items()
            },
            "order_pooled": {
                pair: {**dataclasses.asdict(p), "pooled": pooled_dict(p.pooled)} for pair, p in self.order_pooled.items()
            },
            "recommendations": {
                name: {"verdict": rec.verdict, "text": str(rec), "curves": rec.curves, "rates": list(rec.rates)}
                for name, rec in self.recommendations.items()
            },
            "answer": self.answer_lines(),
        }
        return _json_ready(data)

    def markdown(self):
        """The report, as Markdown."""
        lines = ["# Evidence: dropout rate x batch norm x block order across a suite of studies", ""]
        lines += ["## The answer", ""] + [f"- {line}" for line in self.answer_lines()] + [""]
        if self.suite:
            lines += ["## The suite", "", "| setting | model | dataset | epochs | rates | orders | seeds | runs | model kwargs | why |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            for s in self.suite:
                kwargs = ", ".join(f"{k}={v}" for k, v in (s.model_kwargs or {}).items()) or "-"
                lines.append(
                    f"| {s.name} | {s.model} | {s.dataset} | {s.epochs} | {', '.join(f'{r:g}' for r in s.rates)} | "
                    f"{', '.join(s.orders)} | {s.seeds} | {s.runs()} | {kwargs} | {s.why} |"
                )
            lines.append("")
        lines += [
            f"## Per setting (metric {self.metric}; shift = fitted optimum with batch norm - without)", "",
            "| setting | order | optimum without | optimum with | shift | jackknife se | 95% interval | verdict | pooled | note |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.shifts:
            lines.append(
                f"| {r.setting} | {r.order} | {_fmt(r.optimum_without, '.3f')} | {_fmt(r.optimum_with, '.3f')} | "
                f"{_fmt(r.shift)} | {_fmt(r.se, '.3f')} | {_interval(r.interval)} | {r.verdict} | "
                f"{'yes' if r.included else 'no'} | {r.flag} |"
            )
        lines += [
            "",
            f"Left out of the pool: settings whose verdict is \"widen the grid\" (an optimum on the upper edge) or "
            f"whose shift has no interval. Standard errors below {SE_FLOOR:g} grid steps are raised to it for the "
            "weights (marked). Formulas: `kreg.tuning.statistics` (module docstring, step 7).",
            "",
            "## Pooled per order (random effects: DerSimonian-Laird tau^2, HKSJ interval)", "",
            "| order | k | mean shift | se | 95% HKSJ interval | 95% prediction interval | tau^2 | I^2 | Q (df) | fixed-effect mean | general |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for order, p in self.pooled.items():
            q = p.pooled
            if q is None:
                lines.append(f"| {order} | {len(p.included)} | - | - | - | - | - | - | - | - | no |")
                continue
            lines.append(
                f"| {order} | {q.k} | {q.mean:+.3f} | {q.se:.3f} | {_interval(q.interval)} | "
                f"{_interval(q.prediction_interval)} | {q.tau2:.3g} | {q.i2:.0%} | {q.q:.2f} ({q.df}) | "
                f"{q.fixed_mean:+.3f} | {'yes' if p.general else 'no'} |"
            )
        lines += ["", "## Block order", "", "| setting | order test winner | mean test loss per arm | paired difference (se, seeds) |",
                  "|---|---|---|---|"]
        for o in self.orders:
            if o is None:
                continue
            scores = ", ".join(f"{arm} {score:.4f}" for arm, score in o.mean_scores.items())
            diffs = "; ".join(f"{pair}: {m:+.4f} ({_fmt(se, '.4f')}, {n})" for pair, (m, se, n) in o.differences.items())
            winner = "no normalization" if o.winner == "none" else (o.winner or "none (cannot tell)")
            lines.append(f"| {o.setting} | {winner} | {scores} | {diffs} |")
        lines += ["", _winner_summary(self.orders, list(self.pooled)), ""]
        for p in self.order_pooled.values():
            lines.append(f"- {p.answer}")
            if p.excluded:
                lines.append(f"  Left out: {', '.join(f'{s} ({why})' for s, why in p.excluded.items())}.")
        lines += [
            "",
            "Scores: each seed's test loss at the rate the other seeds' validation curve chooses "
            "(`statistics.order_comparison`); differences are paired by seed, in test-loss units of each dataset.",
            "",
            "![forest plot](forest.png)",
            "",
            "## Per-setting recommendations",
            "",
        ]
        lines += [f"- **{name}**: {rec}" for name, rec in self.recommendations.items()]
        lines += ["", "## Reproduce", ""]
        if self.command:
            lines += ["```", self.command, "```", ""]
        lines.append(
            f"Python: `kreg.tuning.evidence(directory={self.directory!r}, quick={self.quick})`; "
            "resumable: recorded runs are not trained again."
        )
        timing = []
        if self.wall_time is not None:
            timing.append(f"this call {self.wall_time:.1f} s")
        if self.training_time is not None:
            timing.append(f"training recorded in the rows {self.training_time:.1f} s over {self.runs} runs")
        if timing:
            lines += ["", "Wall time: " + "; ".join(timing) + "."]
        return "\n".join(lines) + "\n"

    def plot(self, path):
        """Writes the forest plot to `path` (PNG)."""
        _forest(self, path)

    def write(self, out_dir):
        """Writes `evidence.md`, `evidence.json` and `forest.png` to `out_dir`.

        Returns:
            The paths written, in `EVIDENCE_FILES` order.
        """
        out_dir = checks.check_path("out_dir", out_dir)
        os.makedirs(out_dir, exist_ok=True)
        paths = [os.path.join(out_dir, name) for name in EVIDENCE_FILES]
        self.plot(paths[2])
        ledger.atomic_write_text(paths[1], json.dumps(self.to_dict(), indent=1, allow_nan=False))
        ledger.atomic_write_text(paths[0], self.markdown())
        return paths


def _json_ready(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k) if k is not None else "null": _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    return value


def combine(recommendations, suite=None, min_effect=statistics.MIN_EFFECT, **extra):
    """Pools per-setting recommendations into an `Evidence` (no training).

    Args:
        recommendations: setting name -> `Recommendation`, in suite order.
        suite: the `Setting`s, if known.
        min_effect: shifts smaller than this are not worth acting on.
        **extra: further `Evidence` fields (quick, directory, wall_time, ...).

    Returns:
        An `Evidence`.
    """
    if not recommendations:
        raise checks.fail("recommendations", "at least one setting's Recommendation", recommendations)
    shifts = [row for name, rec in recommendations.items() for row in setting_shifts(name, rec)]
    orders = [setting_order(name, rec) for name, rec in recommendations.items()]
    metric = next(iter(recommendations.values())).metric
    fields = {"quick": False, "directory": None, **extra}
    return Evidence(
        suite=tuple(suite) if suite else None,
        metric=metric,
        shifts=shifts,
        orders=orders,
        pooled=pool_shifts(shifts, min_effect=min_effect),
        order_pooled=pool_orders(orders),
        recommendations=dict(recommendations),
        **fields,
    )


def command(directory, quick):
    """The `kreg evidence` command line for `directory` and `quick`."""
    return "kreg evidence" + (" --quick" if quick else "") + f" --out {shlex.quote(str(directory))}"


def evidence(directory="kreg-evidence", quick=False, quiet=False, suite=None, min_effect=statistics.MIN_EFFECT):
    """Runs (or resumes) the suite's studies and pools them.

    Args:
        directory: every setting's study goes to `directory/<setting name>/`.
        quick: run `QUICK_SUITE` (tiny, for checks) instead of `SUITE`.
        quiet: print nothing.
        suite: a custom sequence of `Setting`s (overrides `quick`).
        min_effect: shifts smaller than this are not worth acting on.

    Returns:
        An `Evidence`; `.write(out_dir)` writes its report.

    Raises:
        StudyConflictError: a setting's folder holds another study.
    """
    directory = checks.check_path("directory", directory)
    quick = checks.check_bool("quick", quick)
    quiet = checks.check_bool("quiet", quiet)
    settings = tuple(suite) if suite is not None else (QUICK_SUITE if quick else SUITE)
    if not settings or not all(isinstance(s, Setting) for s in settings):
        raise checks.fail("suite", "a non-empty sequence of evidence.Setting", suite)
    if len({s.name for s in settings}) != len(settings):
        raise checks.fail("suite", "settings with distinct names", [s.name for s in settings])
    start = time.monotonic()
    recommendations, training_time, runs = {}, 0.0, 0
    for index, setting in enumerate(settings, 1):
        if not quiet:
            print(f"kreg evidence: setting {index}/{len(settings)}: {setting.name} ({setting.runs()} runs, "
                  f"{setting.epochs} epochs)", flush=True)
        rows = setting.study(os.path.join(directory, setting.name), quiet=quiet).run()
        training_time += sum(r.get("wall_time") or 0.0 for r in rows)
        runs += len(rows)
        recommendations[setting.name] = recommendation_module.recommend(rows, norm=NORM, min_effect=min_effect)
    return combine(
        recommendations,
        suite=settings,
        min_effect=min_effect,
        quick=quick,
        directory=directory,
        wall_time=time.monotonic() - start,
        training_time=training_time,
        runs=runs,
        command=command(directory, quick) if suite is None else None,
    )


# --- the forest plot -----------------------------------------------------------


def _forest(result, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Polygon

    panels = [("shift", order, p) for order, p in result.pooled.items()]
    panels += [("order", pair, p) for pair, p in result.order_pooled.items()]
    names = list(dict.fromkeys(r.setting for r in result.shifts))
    height = 1.2 + 0.42 * (len(names) + 3)
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.2 * max(1, len(panels)), height), dpi=100, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (kind, key, pooled_result) in enumerate(panels):
        ax = axes[0][index]
        color = colors[index % len(colors)]
        ys = {name: len(names) - i + 1 for i, name in enumerate(names)}
        if kind == "shift":
            for row in (r for r in result.shifts if r.order == key):
                y = ys[row.setting]
                if row.shift is None:
                    ax.text(0, y, "no shift", color="grey", ha="center", va="center", fontsize=8)
                    continue
                c = color if row.included else "grey"
                if row.interval is not None:
                    ax.plot(row.interval, [y, y], color=c, lw=1.5, alpha=1 if row.included else 0.6)
                ax.plot(row.shift, y, marker="s" if row.included else "x", color=c, ms=6)
                if not row.included:
                    ax.annotate("flagged: " + row.flag.split(":")[0], (row.shift, y), xytext=(4, 4), textcoords="offset points", fontsize=7, color="grey")
            ax.set_title(f"shift of the best rate, {key}", fontsize=10)
            ax.set_xlabel("optimum with batch norm - without")
        else:
            for o in (o for o in result.orders if o is not None):
                if key not in o.differences:
                    continue
                mean, se, n = o.differences[key]
                y = ys.get(o.setting)
                kept = o.setting in pooled_result.included
                c = color if kept else "grey"
                if se is not None:
                    half = 1.959964 * se
                    ax.plot([mean - half, mean + half], [y, y], color=c, lw=1.5)
                ax.plot(mean, y, marker="s" if kept else "x", color=c, ms=6)
            ax.set_title(f"order: test loss {key}", fontsize=10)
            ax.set_xlabel("paired test-loss difference (< 0: first better)")
        pooled = pooled_result.pooled
        if pooled is not None:
            low, high = pooled.interval
            diamond = Polygon([(low, 0.8), (pooled.mean, 1.1), (high, 0.8), (pooled.mean, 0.5)], closed=True,
                              facecolor=color, edgecolor="black", label=f"pooled (HKSJ), k={pooled.k}")
            ax.add_patch(diamond)
            if pooled.prediction_interval is not None:
                ax.plot(pooled.prediction_interval, [0.0, 0.0], color=color, lw=4, alpha=0.4,
                        solid_capstyle="butt", label="95% prediction interval")
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
        ax.axvline(0, color="black", lw=0.8, ls="--")
        ax.set_yticks([ys[n] for n in names] + [0.8, 0.0])
        ax.set_yticklabels(names + ["pooled", "prediction"], fontsize=8)
        ax.set_ylim(-0.7, len(names) + 1.7)
        ax.grid(axis="x", alpha=0.3)
        ax.autoscale(enable=True, axis="x")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
