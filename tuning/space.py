"""`SearchSpace`: the one definition of a study's grid.

Four dimensions, each with canonical values:

- `norm`: "none" (no normalization) or "batch", "layer", "group". Keras
  Tuner's `hp.Choice` takes no None, so "none" is the value everywhere a run
  is described (hyperparameters, configurations, rows, keys); only the
  model builder is called with `norm=None` (`builder_kwargs`);
- `order`: the block order, only where `norm` is not "none" (without a
  normalization it would change nothing, so it does not multiply runs);
  None where it does not apply;
- `rate`: the dropout rate, rounded to 6 decimals (`hp.Float(step=0.1)` would
  give 0.30000000000000004, so rates are an `hp.Choice`);
- `seed`: every seed is a run of its own with its own row (Keras Tuner's
  `executions_per_trial` keeps only the mean), and the same seeds run with
  and without normalization (paired comparisons).

Everyone who needs the grid asks the space: the oracles, packing, the
benchmarks and the tests. Nobody enumerates it again.
"""

import hashlib
import json

from kreg import checks

NORMS = ("none", "batch", "layer", "group")
ORDER_TOKENS = ("norm", "act", "drop")
DIMENSIONS = ("norm", "order", "rate", "seed")
DEFAULT_RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
DEFAULT_NORMS = (None, "batch")
DEFAULT_ORDERS = ("norm-act-drop", "act-norm-drop")
DEFAULT_SEEDS = 5


def _as_tuple(name, values):
    if isinstance(values, (str, bytes)) or values is None:
        values = (values,)
    try:
        values = tuple(values)
    except TypeError:
        raise checks.fail(name, "a sequence", values) from None
    if not values:
        raise checks.fail(name, "a non-empty sequence", values)
    return values


def _distinct(name, values, original):
    if len(set(values)) != len(values):
        raise checks.fail(name, "distinct values", list(original))
    return values


def check_rates(rates):
    """A tuple of distinct rates in [0, 1), rounded to 6 decimals, sorted."""
    values = _as_tuple("rates", rates)
    rounded = [round(checks.check_rate("rates", rate), 6) for rate in values]
    return tuple(sorted(_distinct("rates", rounded, values)))


def check_norms(norms):
    """A tuple of distinct norm values; None (or "none") becomes "none"."""
    values = _as_tuple("norms", norms)
    canonical = [checks.check_choice("norms", "none" if n is None else n, NORMS) for n in values]
    return tuple(_distinct("norms", canonical, values))


def check_order(name, order):
    """A block order with a normalization, such as "norm-act-drop"."""
    tokens = order.split("-") if isinstance(order, str) else ()
    if "norm" not in tokens or any(t not in ORDER_TOKENS for t in tokens) or len(set(tokens)) != len(tokens):
        raise checks.fail(name, f"'-'-joined distinct tokens from {ORDER_TOKENS} including 'norm' (e.g. 'norm-act-drop')", order)
    return order


def check_orders(orders):
    """A tuple of distinct block orders."""
    values = _as_tuple("orders", orders)
    return _distinct("orders", tuple(check_order("orders", order) for order in values), values)


def check_seeds(seeds):
    """Seeds 0..N-1 for an int N >= 1, or a tuple of distinct ints >= 0."""
    if checks.is_int(seeds):
        return tuple(range(checks.check_positive_int("seeds", seeds)))
    allowed = "an int >= 1 or a list of distinct ints >= 0"
    if isinstance(seeds, (str, bytes, bool)) or not hasattr(seeds, "__iter__"):
        raise checks.fail("seeds", allowed, seeds)
    values = _as_tuple("seeds", seeds)
    for seed in values:
        if not checks.is_int(seed) or seed < 0:
            raise checks.fail("seeds", allowed, list(values))
    return _distinct("seeds", tuple(int(s) for s in values), values)


def run_key(config):
    """A short stable key for a configuration dict (the name of its row file).

    Example:

    ```python
    run_key({"norm": "none", "order": None, "rate": 0.1, "seed": 0})  # 16 hex digits
    ```
    """
    text = json.dumps(config, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class SearchSpace:
    """Dropout rate x normalization x block order x seed.

    Args:
        rates: dropout rates, each in [0, 1).
        norms: normalizations: None (or "none"), "batch", "layer", "group".
        orders: block orders used with a normalization, e.g. "norm-act-drop".
        seeds: a number of seeds (0..N-1) or a list of distinct ints >= 0.

    Example:

    ```python
    space = SearchSpace(rates=(0.0, 0.5), norms=(None, "batch"), orders=("norm-act-drop",), seeds=2)
    len(space)             # 8 = (1 + 1 order) x 2 rates x 2 seeds
    space.configs()[0]     # {'norm': 'none', 'order': None, 'rate': 0.0, 'seed': 0}
    ```
    """

    def __init__(self, rates=DEFAULT_RATES, norms=DEFAULT_NORMS, orders=DEFAULT_ORDERS, seeds=DEFAULT_SEEDS):
        self.rates = check_rates(rates)
        self.norms = check_norms(norms)
        self.orders = check_orders(orders)
        self.seeds = check_seeds(seeds)

    def settings(self):
        """The settings of the grid as JSON-ready lists (they identify a study)."""
        return {"rates": list(self.rates), "norms": list(self.norms), "orders": list(self.orders), "seeds": list(self.seeds)}

    def configs(self):
        """Every configuration, in one fixed order: seed, norm, order, rate.

        Returns:
            A list of dicts `{"norm", "order", "rate", "seed"}`; `order` is
            None where `norm` is "none".
        """
        return [
            {"norm": norm, "order": order, "rate": rate, "seed": seed}
            for seed in self.seeds
            for norm in self.norms
            for order in ((None,) if norm == "none" else self.orders)
            for rate in self.rates
        ]

    def __len__(self):
        with_norm = sum(1 for norm in self.norms if norm != "none")
        without = 1 if "none" in self.norms else 0
        return (without + with_norm * len(self.orders)) * len(self.rates) * len(self.seeds)

    def key(self, config):
        """The row key of a configuration (see `run_key`)."""
        return run_key({name: config.get(name) for name in DIMENSIONS} | _extra(config))

    def declare(self, hp):
        """Declares the dimensions to a Keras Tuner `HyperParameters`.

        Every dimension is an `hp.Choice`; `order` is conditional on a
        normalization, so a grid search does not multiply runs by it.
        """
        hp.Choice("norm", list(self.norms))
        with_norm = [norm for norm in self.norms if norm != "none"]
        if with_norm:
            with hp.conditional_scope("norm", with_norm):
                hp.Choice("order", list(self.orders))
        hp.Choice("rate", list(self.rates))
        hp.Choice("seed", list(self.seeds))

    def config_of(self, hyperparameters):
        """The configuration of a Keras Tuner `HyperParameters`.

        Inactive dimensions become None; values that are not dimensions
        (e.g. Hyperband's "tuner/epochs") are kept after them.
        """
        space = {hp.name for hp in hyperparameters.space}
        values = {
            name: value
            for name, value in hyperparameters.values.items()
            if name not in space or hyperparameters.is_active(name)
        }
        config = {name: values.pop(name, None) for name in DIMENSIONS}
        config.update(values)
        return config

    def builder_kwargs(self, config):
        """The model builder's keyword arguments for a configuration.

        `norm` is None for no normalization; `order` is passed only with one.
        """
        kwargs = {"rate": config["rate"], "seed": config["seed"], "norm": None if config["norm"] == "none" else config["norm"]}
        if config["norm"] != "none":
            kwargs["order"] = config["order"]
        return kwargs


def _extra(config):
    """Values of a configuration beyond the dimensions (Hyperband's epochs)."""
    return {name: value for name, value in config.items() if name not in DIMENSIONS}
