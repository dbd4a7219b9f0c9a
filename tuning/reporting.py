"""The report of a study: report.md, results.csv, results.json and two PNG plots."""

import math
import os

import numpy as np

from kreg import checks
from kreg.tuning import hparams
from kreg.tuning import ledger
from kreg.tuning import recommendation
from kreg.tuning import schema

REPORT_FILES = ("report.md", "results.csv", "results.json", "metric_vs_rate.png", "rate_order_heatmap.png")


def _setting(norm, order):
    return "no norm" if norm == "none" else f"{norm}: {order}"


def summary_table(rows, metric=schema.DEFAULT_METRIC, confidence=0.95):
    """Mean and interval half-width of `metric` over seeds per configuration.

    Returns:
        A list of dicts `{norm, order, rate, n, mean, half_width}` sorted by
        setting then rate (`half_width` is NaN below two seeds).
    """
    column = schema.metric(metric).column
    table = []
    for (norm, order, rate), by_seed in sorted(
        recommendation.group_by_config(rows, column).items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]), kv[0][2])
    ):
        values = list(by_seed.values())
        low, high = recommendation.t_interval(values, confidence)
        half = (high - low) / 2 if math.isfinite(high) else math.nan
        table.append(
            {"norm": norm, "order": order, "rate": rate, "n": len(values), "mean": float(np.mean(values)), "half_width": half}
        )
    return table


def _better(metric):
    return "lower" if schema.metric(metric).direction == "min" else "higher"


def _settings(table):
    """The distinct (norm, order) settings of a summary table, "none" first."""
    return sorted({(t["norm"], t["order"]) for t in table}, key=lambda s: (s[0] != "none", str(s[0]), str(s[1])))


def plot_metric_vs_rate(table, metric, path):
    """Metric against dropout rate, one line per norm setting, with CI bands."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for norm, order in _settings(table):
        points = [t for t in table if (t["norm"], t["order"]) == (norm, order)]
        rates = np.array([t["rate"] for t in points])
        means = np.array([t["mean"] for t in points])
        half = np.nan_to_num(np.array([t["half_width"] for t in points]))
        line = ax.plot(rates, means, marker="o", label=_setting(norm, order))[0]
        ax.fill_between(rates, means - half, means + half, color=line.get_color(), alpha=0.15)
    ax.set_xticks(sorted({t["rate"] for t in table}))
    ax.set_xlabel("dropout rate")
    ax.set_ylabel(f"{schema.metric(metric).title} ({_better(metric)} is better)")
    ax.set_title(f"{schema.metric(metric).title} vs dropout rate (mean, 95% CI over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(title="normalization: order")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_rate_order_heatmap(table, metric, path):
    """Heatmap of the metric's mean over seeds, rows = norm setting, columns = rate."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    settings = _settings(table)
    rates = sorted({t["rate"] for t in table})
    grid = np.full((len(settings), len(rates)), np.nan)
    for t in table:
        grid[settings.index((t["norm"], t["order"])), rates.index(t["rate"])] = t["mean"]
    fig, ax = plt.subplots(figsize=(1.1 * len(rates) + 3, 0.7 * len(settings) + 1.8), dpi=110)
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(rates)), [f"{r:g}" for r in rates])
    ax.set_yticks(range(len(settings)), [_setting(*s) for s in settings])
    ax.set_xlabel("dropout rate")
    ax.set_ylabel("normalization: order")
    ax.set_title(f"mean {schema.metric(metric).title} over seeds ({_better(metric)} is better)")
    middle = np.nanmean(grid)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if np.isfinite(grid[i, j]):
                color = "black" if grid[i, j] > middle else "white"
                ax.text(j, i, f"{grid[i, j]:.3g}", ha="center", va="center", color=color, fontsize=8)
    fig.colorbar(image, ax=ax, label=schema.metric(metric).title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _statistics_lines(verdict):
    """The shift of every order and the order test, as Markdown tables."""
    lines = []
    if verdict.shifts:
        lines += ["", "## Shift of the optimal rate per order", ""]
        lines += ["Fitted optima (quadratic vertex), shift with a 95% leave-one-seed-out jackknife interval.", ""]
        lines += ["| order | optimum without | optimum with | shift | 95% interval | fit | verdict |", "|---|---|---|---|---|---|---|"]
        for order, shift in verdict.shifts.items():
            e = shift.estimate
            interval = "-" if e.interval is None else f"[{e.interval[0]:+.3f}, {e.interval[1]:+.3f}]"
            fit = "local" if e.refine else "all rates"
            lines.append(
                f"| {order} | {e.optimum_without:.3f} | {e.optimum_with:.3f} | {e.shift:+.3f} | {interval} | {fit} | {shift.verdict.label} |"
            )
    if verdict.order_comparison is not None:
        comparison = verdict.order_comparison
        lines += ["", "## Order test", ""]
        lines += [
            "Each seed's rate chosen by the other seeds' mean validation curve, scored on the test split; "
            "paired t tests, Holm-adjusted.",
            "",
            "| arms | mean difference | t | p | adjusted p |",
            "|---|---|---|---|---|",
        ]
        for pair in comparison.pairs:
            lines.append(
                f"| {pair.first} vs {pair.second} | {pair.mean_difference:+.4f} | {pair.t:.3g} | {pair.p:.3g} | {pair.p_adjusted:.3g} |"
            )
        lines += ["", f"Winner: {comparison.winner or 'none (the data cannot tell)'}."]
    return lines


def _markdown(rows, table, metric, recommendation_text, verdict=None):
    study = getattr(rows, "study", None) or {}
    failed = [r for r in rows if r["status"] == "failed"]
    lines = ["# kreg study report", ""]
    if study:
        lines += [
            f"Model `{study.get('model')}` on `{study.get('dataset')}`, tuner `{study.get('tuner')}`, "
            f"{study.get('epochs')} epochs, batch size {study.get('batch_size')}; "
            f"{len(rows)} runs ({len(failed)} failed).",
            "",
        ]
    lines += ["## Recommendation", "", recommendation_text, ""]
    lines += [
        f"## {schema.metric(metric).title} per rate and normalization",
        "",
        "Mean over seeds +/- half-width of the 95% t interval.",
        "",
        "| normalization: order | rate | seeds | mean +/- 95% CI |",
        "|---|---|---|---|",
    ]
    for t in table:
        ci = "" if math.isnan(t["half_width"]) else f" +/- {t['half_width']:.4f}"
        lines.append(f"| {_setting(t['norm'], t['order'])} | {t['rate']:g} | {t['n']} | {t['mean']:.4f}{ci} |")
    direction = schema.metric(metric).direction
    pick = min if direction == "min" else max
    lines += ["", "## Order comparison", "", "Best rate of each setting (mean over seeds).", ""]
    lines += ["| normalization: order | best rate | mean +/- 95% CI |", "|---|---|---|"]
    for setting in _settings(table):
        best = pick((t for t in table if (t["norm"], t["order"]) == setting), key=lambda t: t["mean"])
        ci = "" if math.isnan(best["half_width"]) else f" +/- {best['half_width']:.4f}"
        lines.append(f"| {_setting(*setting)} | {best['rate']:g} | {best['mean']:.4f}{ci} |")
    if verdict is not None:
        lines += _statistics_lines(verdict)
    if failed:
        lines += ["", "## Failed runs", ""]
        for r in failed:
            lines.append(f"- {_setting(r['norm'], r['order'])}, rate {r['rate']:g}, seed {r['seed']}: {r['message']}")
    lines += [
        "",
        "## Files",
        "",
        "- `results.csv`, `results.json`: every run, one row each",
        "- `metric_vs_rate.png`: metric vs dropout rate, one line per setting, 95% CI bands",
        "- `rate_order_heatmap.png`: mean metric per rate and order",
        "",
        "![metric vs rate](metric_vs_rate.png)",
        "",
        "![rate x order](rate_order_heatmap.png)",
        "",
    ]
    return "\n".join(lines)


TENSORBOARD_DIR = "tensorboard"


def report(results, out_dir, metric=schema.DEFAULT_METRIC, tensorboard=False):
    """Writes a study's report.

    Args:
        results: rows from `Study.run()` / `kreg.tuning.results(directory)`,
            or a study directory.
        out_dir: folder for the files (created if needed).
        metric: the metric of the tables and plots (see `recommend`).
        tensorboard: also write the runs for TensorBoard's HParams dashboard
            to `out_dir/tensorboard` (`tensorboard --logdir OUT/tensorboard`;
            see `kreg.tuning.hparams.write_hparams`).

    Returns:
        The `Recommendation`, or None when the runs cannot support one (e.g.
        no run without normalization); the report then says why.

    Example:

    ```python
    kreg.tuning.report(kreg.tuning.results("kreg-study"), "kreg-study")
    ```
    """
    schema.metric(metric)
    checks.check_bool("tensorboard", tensorboard)
    if isinstance(results, str):
        results = ledger.results(results)
    os.makedirs(out_dir, exist_ok=True)
    results = results if isinstance(results, ledger.Results) else ledger.Results(results)
    results.to_csv(os.path.join(out_dir, "results.csv"))
    results.to_json(os.path.join(out_dir, "results.json"))
    table = summary_table(results, metric)
    try:
        verdict = recommendation.recommend(results, metric=metric)
        text = str(verdict)
    except ValueError as e:
        verdict, text = None, f"No recommendation: {e}."
    ledger.atomic_write_text(os.path.join(out_dir, "report.md"), _markdown(results, table, metric, text, verdict))
    if table:
        plot_metric_vs_rate(table, metric, os.path.join(out_dir, "metric_vs_rate.png"))
        plot_rate_order_heatmap(table, metric, os.path.join(out_dir, "rate_order_heatmap.png"))
    if tensorboard:
        hparams.write_hparams(results, os.path.join(out_dir, TENSORBOARD_DIR))
    return verdict
