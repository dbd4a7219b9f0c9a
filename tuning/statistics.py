"""Statistics of a study: the dropout-rate shift, the block-order test, pooling.

Pure functions over numpy arrays (no Keras, no pandas). An *arm* is one
configuration of the network (no normalization, or batch norm in one block
order); its results are a matrix `losses` of shape `(seeds, rates)` of final
validation losses (lower is better) on a common, strictly increasing grid
`rates` of dropout rates in [0, 1). Rows of two arms are paired by seed: the
same seed starts both arms from the same initial weights.

The procedure, with its reference numbers
-----------------------------------------

1. Lack of fit (`lack_of_fit`). For each arm, a quadratic in the rate is
   fitted by least squares to the seed-mean curve `m_j` (n seeds, J rates,
   fit `q_j`) and tested against the pure-error variance:

       SS_lof = n * sum_j (m_j - q_j)^2                   df1 = J - 3
       r_ij   = x_ij - m_j - s_i + g                      (s_i: seed mean, g: grand mean)
       SS_pe  = sum_ij r_ij^2                             df2 = (n - 1)(J - 1)
       F      = (SS_lof / df1) / (SS_pe / df2)            p = P(F(df1, df2) > F)

   The pure error is the two-way (seed x rate) residual: seed effects (one
   seed better at every rate) are removed, as they move the curve up and down
   but not its minimum. A mean over n seeds has variance sigma^2 / n, hence the
   factor n in SS_lof. The quadratic passes when p >= alpha = 0.05. With 3
   rates df1 = 0 and the test passes trivially (F = 0, p = 1).
2. Fit window (`fit_window`). Both arms pass: all rates, for both arms.
   Otherwise: for each arm, its grid argmin and its two neighbours (at an edge,
   the three points at that edge), and the estimate is flagged `refine=True`
   with the advice to refine the grid to half the step around each optimum.
3. Optimum (`optimum`). A least-squares quadratic on the window; its
   minimizer over the window: the vertex when the curvature is > 0, else the
   better (lower fitted) end of the window (ties: the lower rate); always
   within [rates[window[0]], rates[window[-1]]].
4. Shift (`shift_estimate`). shift = optimum with BN - optimum without, both
   from the seed-mean curves. The 95% interval is the leave-one-seed-out
   jackknife (Quenouille 1956, Tukey 1958), windows held fixed:
   se^2 = ((n-1)/n) * sum_i (theta_(i) - theta_bar)^2, interval
   theta_hat +- t_{0.975, n-1} * se, centred at the full-sample estimate.
   At least 3 paired seeds are needed (2 df for the t quantile), else no
   interval. Bounds are clamped to what the grid can express: a shift to
   [rates[0] - rates[-1], rates[-1] - rates[0]], an optimum to
   [rates[0], rates[-1]]. The mean over seeds of the per-seed grid-argmin
   difference is reported as a sensitivity figure (no model, no interval).
5. Verdict (`verdict`), the first rule that applies:

   a. fewer than 3 paired seeds: "too few paired seeds for a verdict";
   b. an optimum on the upper edge, i.e. its window ends at rates[-1], it lies
      within half the last grid step of rates[-1], and its (clamped) jackknife
      interval reaches rates[-1]: no verdict but "widen the grid";
   c. both optima are 0 (within 1e-9): "keep (no dropout either way)";
   d. the shift's interval covers 0, or |shift| < min_effect = 0.05: "keep";
   e. the interval lies below 0 and the optimum with BN is within half the
      first grid step of 0: "remove";
   f. "slightly decrease" / "slightly increase" when |shift| < large_shift =
      0.2 (two steps of a 0.1 grid), else "significantly decrease" /
      "significantly increase".

6. Block order (`order_comparison`). For each arm and seed, the rate is
   picked by the grid argmin of the mean validation curve of the *other*
   seeds, and that seed's test loss at that rate is its score (the seed never
   chooses its own rate). Every pair of arms gets a paired t test
   (scipy.stats.ttest_rel) on the scores, p-values Holm-adjusted (Holm 1979,
   `holm`) over all pairs; the winner is the arm with the lowest mean score if
   its adjusted p-values against every other arm are < alpha = 0.05, else
   None: the data cannot tell.
7. Pooling over studies (`pool`), for per-setting shifts y_i with standard
   errors se_i (k >= 2):

       w_i   = 1 / se_i^2,   mu_FE = sum w y / sum w
       Q     = sum w (y - mu_FE)^2,   df = k - 1
       tau^2 = max(0, (Q - df) / (sum w - sum w^2 / sum w))     (DerSimonian & Laird 1986)
       w*_i  = 1 / (se_i^2 + tau^2),   mu = sum w* y / sum w*
       q     = sum w* (y - mu)^2 / (k - 1)
       se    = sqrt(max(1, q) / sum w*)                         (Hartung & Knapp 2001,
       interval mu +- t_{0.975, k-1} * se                        Sidik & Jonkman 2002)
       I^2   = max(0, (Q - df) / Q)                             (Higgins & Thompson 2002)

   The floor max(1, q) keeps the HKSJ interval at least as wide as the
   DerSimonian-Laird Wald variance would make it. For k >= 5, the prediction
   interval for the shift of a new setting is mu +- t_{0.975, k-2} *
   sqrt(tau^2 + se^2). Higgins, Thompson & Spiegelhalter (2009) use the t on
   k - 2 df with the DerSimonian-Laird variance 1 / sum w*; here se is the
   HKSJ one, consistent with the interval, and never smaller.

Reference simulation (tests/tuning/test_tuning_statistics.py): 5 seeds, 7
rates 0..0.6, losses (r - r0)^2 + seed offset (sd 0.05, shared by the arms)
+ noise (sd 0.02), r0 = 0.3 without and 0.2 with BN, 1000 replications. The
95% jackknife interval covers the true shift -0.1 in 94% of runs: 95.3% when
both quadratics pass, but only about 72% in the ~10% of runs on local
windows, where three points pin the curvature down poorly; hence the advice
to refine the grid. With no true shift, 2% of the verdicts are not "keep".
"""

import dataclasses
import itertools

import numpy as np
from scipy import stats

ALPHA = 0.05
CONFIDENCE = 0.95
MIN_SEEDS = 3
MIN_EFFECT = 0.05
LARGE_SHIFT = 0.2
MIN_STUDIES_FOR_PREDICTION = 5
ZERO = 1e-9
# A lack of fit below this share of the curve's own variation is float round-off.
EXACT_FIT = 1e-20
REFINE_ADVICE = "refine the grid to half the step around each optimum"


@dataclasses.dataclass(frozen=True)
class LackOfFit:
    """Lack-of-fit F test of a quadratic; `p >= alpha` means it passes."""

    f: float
    df1: int
    df2: int
    p: float

    def passes(self, alpha=ALPHA):
        """True when the quadratic is not rejected at level `alpha` (False when p is nan)."""
        return bool(self.p >= alpha)


@dataclasses.dataclass(frozen=True)
class ShiftEstimate:
    """The dropout-rate shift with batch norm, and how it was obtained.

    Intervals are `(low, high)` tuples, or None with `reason` saying why.
    Windows are the rate indices each arm's quadratic was fitted on.
    """

    shift: float
    interval: tuple | None
    se: float | None
    optimum_without: float
    optimum_with: float
    interval_without: tuple | None
    interval_with: tuple | None
    window_without: tuple
    window_with: tuple
    lack_of_fit_without: LackOfFit
    lack_of_fit_with: LackOfFit
    refine: bool
    advice: str
    grid_shifts: tuple
    grid_shift_mean: float
    n_seeds: int
    reason: str


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A verdict label and the rule that produced it."""

    label: str
    reason: str


@dataclasses.dataclass(frozen=True)
class PairComparison:
    """Paired t test of two arms' scores; `mean_difference` is first - second."""

    first: str
    second: str
    mean_difference: float
    t: float
    p: float
    p_adjusted: float


@dataclasses.dataclass(frozen=True)
class OrderComparison:
    """Leave-one-seed-out test scores per arm, all pairwise tests, the winner."""

    mean_scores: dict
    scores: dict
    chosen_rates: dict
    pairs: tuple
    winner: str | None


@dataclasses.dataclass(frozen=True)
class Pooled:
    """Random-effects pooling (DerSimonian-Laird tau^2, HKSJ interval)."""

    mean: float
    se: float
    interval: tuple
    prediction_interval: tuple | None
    tau2: float
    q: float
    df: int
    i2: float
    fixed_mean: float
    k: int


def _check_grid(rates, losses):
    rates = np.asarray(rates, dtype="float64")
    losses = np.asarray(losses, dtype="float64")
    if rates.ndim != 1 or len(rates) < 3 or np.any(np.diff(rates) <= 0):
        raise ValueError(f"rates must be a strictly increasing grid of at least 3 rates, got {rates}")
    if losses.ndim != 2 or losses.shape[1] != len(rates) or len(losses) < 1:
        raise ValueError(f"losses must have shape (seeds, {len(rates)}), got {losses.shape}")
    if not np.all(np.isfinite(losses)):
        raise ValueError("losses must be finite")
    return rates, losses


def lack_of_fit(rates, losses):
    """Lack-of-fit F test of a quadratic in the rate fitted to the seed-mean curve.

    With means `m_j` over `n` seeds and least-squares quadratic `q_j`:
    `SS_lof = n * sum_j (m_j - q_j)^2` on `J - 3` df, against the pure error
    `SS_pe = sum_ij (x_ij - m_j - s_i + g)^2` on `(n - 1)(J - 1)` df (two-way
    residuals: seed effects removed), `F = (SS_lof/df1) / (SS_pe/df2)`.

    With 3 rates the quadratic interpolates the means: df1 = 0 and the test
    passes trivially (F = 0, p = 1). With one seed there is no pure error:
    F and p are nan, and `passes()` is False. Noise-free losses give
    `SS_pe = 0`: F = inf (p = 0) when the quadratic misses the means, and
    F = 0 (p = 1) when it fits them exactly (up to float round-off).

    Args:
        rates: strictly increasing grid, shape (J,), J >= 3.
        losses: shape (n, J), one row per seed.

    Returns:
        LackOfFit(f, df1, df2, p).

    Example:
        >>> rates = [0.0, 0.1, 0.2, 0.3]
        >>> losses = [[0.10, 0.02, 0.01, 0.05], [0.12, 0.03, 0.01, 0.06]]
        >>> result = lack_of_fit(rates, losses)
        >>> result.df1, result.df2
        (1, 3)
    """
    rates, losses = _check_grid(rates, losses)
    n, n_rates = losses.shape
    means = losses.mean(axis=0)
    fitted = np.polyval(np.polyfit(rates, means, 2), rates)
    df1, df2 = n_rates - 3, (n - 1) * (n_rates - 1)
    if df1 == 0:
        return LackOfFit(f=0.0, df1=0, df2=df2, p=1.0)
    if df2 == 0:
        return LackOfFit(f=float("nan"), df1=df1, df2=0, p=float("nan"))
    ss_lof = n * np.sum((means - fitted) ** 2)
    if ss_lof <= EXACT_FIT * n * np.sum((means - means.mean()) ** 2):  # the quadratic is exact
        return LackOfFit(f=0.0, df1=df1, df2=df2, p=1.0)
    residuals = losses - means[None, :] - losses.mean(axis=1, keepdims=True) + losses.mean()
    ss_pe = np.sum(residuals**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ss_lof / df1) / (ss_pe / df2)
    return LackOfFit(f=float(f), df1=df1, df2=df2, p=float(stats.f.sf(f, df1, df2)))


def fit_window(rates, mean_curve, passes):
    """The rate indices a quadratic is fitted on.

    Args:
        rates: strictly increasing grid, shape (J,), J >= 3.
        mean_curve: the seed-mean loss at each rate, shape (J,).
        passes: whether the quadratic passed the lack-of-fit test.

    Returns:
        Integer array of indices: all rates if `passes`, else the grid argmin
        and its two neighbours (at an edge, the three points at that edge).

    Example:
        >>> fit_window([0.0, 0.1, 0.2, 0.3, 0.4], [5, 4, 3, 1, 2], passes=False)
        array([2, 3, 4])
    """
    mean_curve = np.asarray(mean_curve, dtype="float64")
    n_rates = len(rates)
    if mean_curve.shape != (n_rates,) or n_rates < 3:
        raise ValueError("mean_curve must have one value per rate, and at least 3 rates")
    if passes:
        return np.arange(n_rates)
    start = min(max(int(np.argmin(mean_curve)) - 1, 0), n_rates - 3)
    return np.arange(start, start + 3)


def optimum(rates, curve, window):
    """The rate minimizing a least-squares quadratic fitted on a window.

    The vertex when the curvature is > 0, else the end of the window with the
    lower fitted loss (ties: the lower rate); clipped to
    [rates[window[0]], rates[window[-1]]]. Curvatures and end differences
    within 1e-9 times max(1, max |loss|) count as 0, so a flat curve gives
    the lower end.

    Args:
        rates: grid, shape (J,).
        curve: loss at each rate, shape (J,).
        window: increasing rate indices, at least 3.

    Returns:
        The optimal rate (float).

    Example:
        >>> rates = [0.0, 0.1, 0.2, 0.3, 0.4]
        >>> curve = [(r - 0.25) ** 2 for r in rates]
        >>> round(optimum(rates, curve, [0, 1, 2, 3, 4]), 6)
        0.25
    """
    window = np.asarray(window)
    x = np.asarray(rates, dtype="float64")[window]
    y = np.asarray(curve, dtype="float64")[window]
    low, high = x[0], x[-1]
    # On t = (x - low) / (high - low) in [0, 1] the coefficients are in loss
    # units, so a flat curve is recognized: exact zeros come out as round-off.
    a, b, _ = np.polyfit((x - low) / (high - low), y, 2)
    tolerance = ZERO * max(1.0, float(np.max(np.abs(y))))
    if a > tolerance:
        return float(low + np.clip(-b / (2 * a), 0.0, 1.0) * (high - low))
    return float(high if a + b < -tolerance else low)


def jackknife(estimate, replicates, confidence=CONFIDENCE):
    """Leave-one-out jackknife standard error and t interval.

    `se^2 = ((n-1)/n) * sum_i (theta_(i) - mean_i theta_(i))^2`, interval
    `estimate +- t_{(1+confidence)/2, n-1} * se`.

    Args:
        estimate: the full-sample estimate theta_hat.
        replicates: theta_(i), the estimate without sample i, shape (n,), n >= 2.
        confidence: interval level.

    Returns:
        (se, (low, high)).

    Example:
        >>> se, interval = jackknife(7 / 3, [3.0, 2.5, 1.5])  # the mean of (1, 2, 4)
        >>> round(se**2, 6)  # = var(1, 2, 4) / 3 = 7/9
        0.777778
    """
    replicates = np.asarray(replicates, dtype="float64")
    n = len(replicates)
    if n < 2:
        raise ValueError(f"the jackknife needs at least 2 replicates, got {n}")
    se = float(np.sqrt((n - 1) / n * np.sum((replicates - replicates.mean()) ** 2)))
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * se
    return se, (float(estimate - half), float(estimate + half))


def _clamp(interval, low, high):
    return (float(np.clip(interval[0], low, high)), float(np.clip(interval[1], low, high)))


def shift_estimate(rates, losses_without, losses_with, alpha=ALPHA, confidence=CONFIDENCE):
    """The shift of the optimal dropout rate when batch norm is added.

    Lack-of-fit test on both arms; if both pass, quadratics on all rates,
    else on local windows around each arm's argmin (`refine=True`). The
    optima come from the seed-mean curves; the intervals from the
    leave-one-seed-out jackknife with the windows held fixed, clamped to the
    grid's range (see the module docstring, steps 1-4).

    Args:
        rates: strictly increasing grid, shape (J,), J >= 3.
        losses_without: validation losses without batch norm, shape (n, J).
        losses_with: validation losses with batch norm, shape (n, J), rows
            paired with `losses_without` by seed.
        alpha: level of the lack-of-fit test.
        confidence: level of the jackknife intervals.

    Returns:
        ShiftEstimate. `interval`, `interval_without` and `interval_with` are
        None, with `reason` saying why, for fewer than 3 paired seeds.

    Example:
        >>> rates = np.linspace(0.0, 0.6, 7)
        >>> offsets = np.array([[0.0], [0.01], [0.02]])
        >>> without = (rates - 0.3) ** 2 + offsets
        >>> with_bn = (rates - 0.2) ** 2 + offsets
        >>> round(shift_estimate(rates, without, with_bn).shift, 6)
        -0.1
    """
    rates, losses_without = _check_grid(rates, losses_without)
    _, losses_with = _check_grid(rates, losses_with)
    if losses_without.shape != losses_with.shape:
        raise ValueError(
            f"paired arms must have the same shape, got {losses_without.shape} and {losses_with.shape}"
        )
    n = len(losses_without)
    fit_without = lack_of_fit(rates, losses_without)
    fit_with = lack_of_fit(rates, losses_with)
    passes = fit_without.passes(alpha) and fit_with.passes(alpha)
    window_without = fit_window(rates, losses_without.mean(axis=0), passes)
    window_with = fit_window(rates, losses_with.mean(axis=0), passes)

    def optima(rows):
        return (
            optimum(rates, losses_without[rows].mean(axis=0), window_without),
            optimum(rates, losses_with[rows].mean(axis=0), window_with),
        )

    opt_without, opt_with = optima(np.arange(n))
    grid_shifts = rates[losses_with.argmin(axis=1)] - rates[losses_without.argmin(axis=1)]
    intervals = (None, None, None)
    se, reason = None, ""
    if n >= MIN_SEEDS:
        replicates = np.array([optima(np.delete(np.arange(n), i)) for i in range(n)])
        span = rates[-1] - rates[0]
        se, shift_interval = jackknife(opt_with - opt_without, replicates[:, 1] - replicates[:, 0], confidence)
        intervals = (
            _clamp(shift_interval, -span, span),
            _clamp(jackknife(opt_without, replicates[:, 0], confidence)[1], rates[0], rates[-1]),
            _clamp(jackknife(opt_with, replicates[:, 1], confidence)[1], rates[0], rates[-1]),
        )
    else:
        reason = f"{n} paired seed(s): the jackknife interval needs at least {MIN_SEEDS}"
    return ShiftEstimate(
        shift=opt_with - opt_without,
        interval=intervals[0],
        se=None if se is None else float(se),
        optimum_without=opt_without,
        optimum_with=opt_with,
        interval_without=intervals[1],
        interval_with=intervals[2],
        window_without=tuple(int(i) for i in window_without),
        window_with=tuple(int(i) for i in window_with),
        lack_of_fit_without=fit_without,
        lack_of_fit_with=fit_with,
        refine=not passes,
        advice="" if passes else REFINE_ADVICE,
        grid_shifts=tuple(float(d) for d in grid_shifts),
        grid_shift_mean=float(grid_shifts.mean()),
        n_seeds=n,
        reason=reason,
    )


def verdict(estimate, rates, min_effect=MIN_EFFECT, large_shift=LARGE_SHIFT):
    """The verdict on the dropout rate once batch norm is added.

    Rules, the first that applies (module docstring, step 5): too few paired
    seeds; "widen the grid" when an optimum's window ends at rates[-1], the
    optimum is within half the last step of it and its jackknife interval
    reaches it; "keep (no dropout either way)" when both optima are 0; "keep"
    when the interval covers 0 or |shift| < min_effect; "remove" when the
    interval lies below 0 and the optimum with BN is within half the first
    step of 0; else "slightly"/"significantly" "decrease"/"increase" by
    |shift| against large_shift.

    Args:
        estimate: a ShiftEstimate from `shift_estimate`.
        rates: the grid the estimate was computed on.
        min_effect: shifts smaller than this are not worth acting on.
        large_shift: from this size on, a shift is "significant".

    Returns:
        Verdict(label, reason).

    Example:
        >>> rates = np.linspace(0.0, 0.6, 7)
        >>> offsets = np.array([[0.0], [0.01], [0.02]])
        >>> estimate = shift_estimate(rates, (rates - 0.3) ** 2 + offsets, (rates - 0.2) ** 2 + offsets)
        >>> verdict(estimate, rates).label
        'slightly decrease'
    """
    rates = np.asarray(rates, dtype="float64")
    if estimate.interval is None:
        return Verdict("too few paired seeds for a verdict", estimate.reason)
    last_index, top, half_top = len(rates) - 1, rates[-1], (rates[-1] - rates[-2]) / 2
    for name, opt, window, interval in (
        ("without", estimate.optimum_without, estimate.window_without, estimate.interval_without),
        ("with", estimate.optimum_with, estimate.window_with, estimate.interval_with),
    ):
        if window[-1] == last_index and top - opt <= half_top + ZERO and interval[1] >= top - ZERO:
            return Verdict(
                "widen the grid",
                f"the optimum {name} batch norm ({opt:g}) sits on the upper edge {top:g} of the grid "
                f"and its interval reaches it",
            )
    if abs(estimate.optimum_without) <= ZERO and abs(estimate.optimum_with) <= ZERO:
        return Verdict("keep (no dropout either way)", "both optima are at rate 0")
    low, high = estimate.interval
    shift = estimate.shift
    if low <= 0 <= high:
        return Verdict("keep", f"the interval [{low:+.3f}, {high:+.3f}] covers 0")
    if abs(shift) < min_effect - ZERO:
        return Verdict("keep", f"the shift {shift:+.3f} is smaller than {min_effect:g}")
    if high < 0 and estimate.optimum_with <= (rates[1] - rates[0]) / 2 + ZERO:
        reason = f"the interval lies below 0 and the optimum with batch norm is {estimate.optimum_with:g}"
        return Verdict("remove", reason)
    size = "slightly" if abs(shift) < large_shift - ZERO else "significantly"
    direction = "decrease" if shift < 0 else "increase"
    return Verdict(f"{size} {direction}", f"shift {shift:+.3f}, interval [{low:+.3f}, {high:+.3f}]")


def holm(pvalues):
    """Holm's step-down adjusted p-values (Holm 1979).

    Sorted ascending, the k-th smallest of m p-values becomes
    `max_{j <= k} min(1, (m - j + 1) * p_(j))`; returned in the input order.

    Args:
        pvalues: raw p-values, shape (m,).

    Returns:
        Adjusted p-values, array of shape (m,).

    Example:
        >>> holm([0.01, 0.04, 0.03, 0.005]).round(3)
        array([0.03, 0.06, 0.06, 0.02])
    """
    pvalues = np.asarray(pvalues, dtype="float64")
    m = len(pvalues)
    order = np.argsort(pvalues, kind="stable")
    stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * pvalues[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return adjusted


def order_comparison(arms, test_losses, rates, alpha=ALPHA):
    """Which arm (no normalization, or a block order) scores best on test data.

    For each arm and seed, the rate is the grid argmin of the mean validation
    curve of the other seeds; the seed's score is its test loss at that rate.
    Each pair of arms gets a paired t test on the scores (a nan p-value, from
    identical scores, counts as 1), p-values Holm-adjusted over all pairs.

    Args:
        arms: arm name -> validation losses, shape (n, J), rows paired by seed.
        test_losses: arm name -> test losses, same keys and shapes.
        rates: the grid, shape (J,).
        alpha: level for the winner.

    Returns:
        OrderComparison: per-arm mean scores, scores and chosen rates per seed,
        the pairs in `itertools.combinations` order of `arms`, and the winner:
        the arm with the lowest mean score if its adjusted p-values against
        every other arm are < alpha, else None (the data cannot tell).

    Example:
        >>> rates = [0.0, 0.1, 0.2]
        >>> val = {"none": [[3, 1, 2]] * 4, "bn": [[1, 2, 3]] * 4}
        >>> test = {"none": [[3, 1, 2], [3, 2, 2], [3, 1, 2], [3, 3, 2]],
        ...         "bn": [[1, 2, 3], [1, 2, 3], [2, 2, 3], [1, 2, 3]]}
        >>> order_comparison(val, test, rates).mean_scores
        {'none': 1.75, 'bn': 1.25}
    """
    names = list(arms)
    if len(names) < 2 or set(names) != set(test_losses):
        raise ValueError("need at least 2 arms, with the same names in arms and test_losses")
    grids = {name: (_check_grid(rates, arms[name])[1], _check_grid(rates, test_losses[name])[1]) for name in names}
    shapes = {array.shape for pair in grids.values() for array in pair}
    if len(shapes) != 1 or next(iter(shapes))[0] < 2:
        raise ValueError(f"all arms need the same shape (seeds, rates) with at least 2 seeds, got {shapes}")
    rates = np.asarray(rates, dtype="float64")
    scores, chosen = {}, {}
    for name, (val, test) in grids.items():
        n = len(val)
        picks = [int(np.argmin(np.delete(val, i, axis=0).mean(axis=0))) for i in range(n)]
        scores[name] = test[np.arange(n), picks]
        chosen[name] = tuple(float(rates[j]) for j in picks)
    pairs = []
    for first, second in itertools.combinations(names, 2):
        with np.errstate(divide="ignore", invalid="ignore"):
            result = stats.ttest_rel(scores[first], scores[second])
        p = 1.0 if np.isnan(result.pvalue) else float(result.pvalue)
        pairs.append((first, second, float(np.mean(scores[first] - scores[second])), float(result.statistic), p))
    adjusted = holm([pair[4] for pair in pairs])
    pairs = tuple(PairComparison(*pair, p_adjusted=float(adj)) for pair, adj in zip(pairs, adjusted))
    mean_scores = {name: float(scores[name].mean()) for name in names}
    best = min(names, key=mean_scores.get)
    beats_all = all(pair.p_adjusted < alpha for pair in pairs if best in (pair.first, pair.second))
    return OrderComparison(
        mean_scores=mean_scores,
        scores={name: tuple(float(s) for s in scores[name]) for name in names},
        chosen_rates=chosen,
        pairs=pairs,
        winner=best if beats_all else None,
    )


def pool(estimates, standard_errors, confidence=CONFIDENCE):
    """Random-effects pooling of per-setting estimates (e.g. shifts).

    DerSimonian-Laird tau^2, Hartung-Knapp-Sidik-Jonkman interval with the
    variance factor floored at 1, I^2, and for k >= 5 a prediction interval
    `mu +- t_{k-2} * sqrt(tau^2 + se^2)` (module docstring, step 7).

    Args:
        estimates: per-setting estimates y_i, shape (k,), k >= 2.
        standard_errors: their standard errors, shape (k,), all > 0.
        confidence: level of both intervals.

    Returns:
        Pooled(mean, se, interval, prediction_interval, tau2, q, df, i2,
        fixed_mean, k); `q` is Cochran's Q, `prediction_interval` None for
        k < 5.

    Example:
        >>> pooled = pool([-0.1, -0.1, -0.1], [0.02, 0.03, 0.04])
        >>> round(pooled.mean, 6), pooled.tau2, pooled.i2
        (-0.1, 0.0, 0.0)
    """
    y = np.asarray(estimates, dtype="float64")
    se = np.asarray(standard_errors, dtype="float64")
    k = len(y)
    if y.ndim != 1 or se.shape != y.shape or k < 2:
        raise ValueError("need at least 2 estimates, each with a standard error")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(se)) and np.all(se > 0)):
        raise ValueError("estimates must be finite and standard errors finite and positive")
    w = 1 / se**2
    fixed_mean = np.sum(w * y) / np.sum(w)
    q = float(np.sum(w * (y - fixed_mean) ** 2))
    df = k - 1
    tau2 = max(0.0, (q - df) / (np.sum(w) - np.sum(w**2) / np.sum(w)))
    w_star = 1 / (se**2 + tau2)
    mean = float(np.sum(w_star * y) / np.sum(w_star))
    scale = np.sum(w_star * (y - mean) ** 2) / df
    se_mean = float(np.sqrt(max(1.0, scale) / np.sum(w_star)))
    tail = (1 + confidence) / 2
    half = stats.t.ppf(tail, df) * se_mean
    prediction = None
    if k >= MIN_STUDIES_FOR_PREDICTION:
        half_pred = stats.t.ppf(tail, k - 2) * np.sqrt(tau2 + se_mean**2)
        prediction = (float(mean - half_pred), float(mean + half_pred))
    return Pooled(
        mean=mean,
        se=se_mean,
        interval=(float(mean - half), float(mean + half)),
        prediction_interval=prediction,
        tau2=float(tau2),
        q=q,
        df=df,
        i2=max(0.0, (q - df) / q) if q > 0 else 0.0,
        fixed_mean=float(fixed_mean),
        k=k,
    )
