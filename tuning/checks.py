"""Argument checks of the study API: each error names the argument, the bad
value and what is allowed, and is raised before anything touches the disk."""

import numbers

NORMS = (None, "batch", "layer", "group")
ORDER_TOKENS = ("norm", "act", "drop")
TUNERS = ("grid", "random", "bayesian", "hyperband")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_rates(rates):
    """A non-empty tuple of distinct rates in [0, 1), rounded to 6 decimals."""
    rates = tuple(rates) if not isinstance(rates, (str, bytes)) else (rates,)
    if not rates:
        raise ValueError("rates must hold at least one dropout rate, got an empty sequence")
    for rate in rates:
        if not isinstance(rate, numbers.Real) or isinstance(rate, bool) or not 0 <= rate < 1:
            raise ValueError(f"rates must be numbers in [0, 1), got {rate!r} in rates={list(rates)!r}")
    rounded = tuple(sorted({round(float(r), 6) for r in rates}))
    if len(rounded) != len(rates):
        raise ValueError(f"rates must be distinct, got rates={list(rates)!r}")
    return rounded


def check_norms(norms):
    """A tuple of distinct norm names, None written as "none"."""
    norms = tuple(norms) if not isinstance(norms, (str, bytes)) else (norms,)
    if not norms:
        raise ValueError(f"norms must hold at least one of {NORMS}, got an empty sequence")
    values = []
    for norm in norms:
        if norm == "none":
            norm = None
        if norm not in NORMS:
            raise ValueError(f"norms must be taken from {NORMS}, got {norm!r}")
        values.append("none" if norm is None else norm)
    if len(set(values)) != len(values):
        raise ValueError(f"norms must be distinct, got norms={list(norms)!r}")
    return tuple(values)


def check_orders(orders):
    """A tuple of distinct block orders such as "norm-act-drop"."""
    orders = tuple(orders) if not isinstance(orders, (str, bytes)) else (orders,)
    if not orders:
        raise ValueError("orders must hold at least one block order, got an empty sequence")
    for order in orders:
        tokens = str(order).split("-")
        if "norm" not in tokens or any(t not in ORDER_TOKENS for t in tokens) or len(set(tokens)) != len(tokens):
            raise ValueError(
                f"orders must be '-'-joined distinct tokens from {ORDER_TOKENS} including 'norm' "
                f"(e.g. 'norm-act-drop'), got {order!r}"
            )
    if len(set(orders)) != len(orders):
        raise ValueError(f"orders must be distinct, got orders={list(orders)!r}")
    return orders


def check_seeds(seeds):
    """Seeds 0..N-1 for an int N >= 1, or a tuple of distinct int seeds."""
    if _is_int(seeds):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1 (a number of seeds) or a list of ints, got {seeds!r}")
        return tuple(range(int(seeds)))
    seeds = tuple(seeds) if not isinstance(seeds, (str, bytes)) else (seeds,)
    if not seeds or not all(_is_int(s) and s >= 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be an int >= 1 or a list of distinct ints >= 0, got {seeds!r}")
    return tuple(int(s) for s in seeds)


def check_positive_int(name, value):
    """An int >= 1."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def check_tuner(tuner):
    """One of `TUNERS`."""
    if tuner not in TUNERS:
        raise ValueError(f"tuner must be one of {TUNERS}, got {tuner!r}")
    return tuner


def check_builder(builder):
    """A callable returning a keras.Model."""
    if not callable(builder):
        raise ValueError(f"model must be a zoo model name or a builder function, got {builder!r}")
    return builder
