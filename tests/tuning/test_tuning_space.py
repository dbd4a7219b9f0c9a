"""`SearchSpace`: the one definition of the grid."""

import keras_tuner
import pytest

from kreg import tuning
from kreg.tuning import space as space_module


def test_configs_are_every_point_once_in_one_fixed_order():
    space = tuning.SearchSpace(rates=(0.5, 0.0), norms=(None, "batch"), orders=("norm-act-drop", "act-norm-drop"), seeds=2)
    configs = space.configs()
    assert len(configs) == len(space) == (1 + 2) * 2 * 2
    assert configs[:4] == [
        {"norm": "none", "order": None, "rate": 0.0, "seed": 0},
        {"norm": "none", "order": None, "rate": 0.5, "seed": 0},
        {"norm": "batch", "order": "norm-act-drop", "rate": 0.0, "seed": 0},
        {"norm": "batch", "order": "norm-act-drop", "rate": 0.5, "seed": 0},
    ]
    assert [c["seed"] for c in configs] == [0] * 6 + [1] * 6
    assert len({space.key(c) for c in configs}) == len(configs)


def test_values_are_canonical():
    space = tuning.SearchSpace(rates=[0.1 * 3, 0.0], norms=["none", "batch"], seeds=[3, 7])
    assert space.rates == (0.0, 0.3)  # 0.30000000000000004 rounded
    assert space.norms == ("none", "batch") == tuning.SearchSpace(norms=(None, "batch")).norms
    assert space.seeds == (3, 7)
    assert tuning.SearchSpace(seeds=3).seeds == (0, 1, 2)
    assert space.settings() == {"rates": [0.0, 0.3], "norms": ["none", "batch"], "orders": list(space.orders), "seeds": [3, 7]}


def test_keys_are_stable_and_ignore_nothing_that_matters():
    config = {"norm": "none", "order": None, "rate": 0.1, "seed": 0}
    assert tuning.SearchSpace().key(config) == space_module.run_key(config)
    assert space_module.run_key(config) == space_module.run_key(dict(reversed(list(config.items()))))
    assert space_module.run_key(config) != space_module.run_key(dict(config, seed=1))
    # Values beyond the dimensions (Hyperband's epochs) are part of the key.
    assert space_module.run_key(config) != space_module.run_key(dict(config, **{"tuner/epochs": 2}))


def test_declare_makes_order_conditional_and_config_of_reads_it_back():
    space = tuning.SearchSpace(rates=(0.0, 0.2), norms=(None, "batch"), orders=("norm-act-drop",), seeds=1)
    hp = keras_tuner.HyperParameters()
    space.declare(hp)
    declared = {entry["config"]["name"]: entry["config"]["values"] for entry in hp.get_config()["space"]}
    assert declared == {"norm": ["none", "batch"], "order": ["norm-act-drop"], "rate": [0.0, 0.2], "seed": [0]}
    hp.values.update({"norm": "none", "rate": 0.2, "seed": 0})
    assert not hp.is_active("order")
    assert space.config_of(hp) == {"norm": "none", "order": None, "rate": 0.2, "seed": 0}
    hp.values.update({"norm": "batch", "order": "norm-act-drop", "tuner/epochs": 3})
    assert space.config_of(hp) == {"norm": "batch", "order": "norm-act-drop", "rate": 0.2, "seed": 0, "tuner/epochs": 3}


def test_builder_kwargs_say_none_for_no_normalization():
    space = tuning.SearchSpace()
    assert space.builder_kwargs({"norm": "none", "order": None, "rate": 0.2, "seed": 1}) == {"rate": 0.2, "seed": 1, "norm": None}
    assert space.builder_kwargs({"norm": "batch", "order": "act-norm-drop", "rate": 0.0, "seed": 0}) == {
        "rate": 0.0,
        "seed": 0,
        "norm": "batch",
        "order": "act-norm-drop",
    }


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rates": (0.0, 1.0)}, "rates must be in [0, 1), got 1.0"),
        ({"rates": ("0.5",)}, "rates must be a number in [0, 1), got '0.5'"),
        ({"rates": ()}, "rates must be a non-empty sequence, got ()"),
        ({"rates": (0.1, 0.1000000001)}, "rates must be distinct values, got [0.1, 0.1000000001]"),
        ({"norms": ("instance",)}, "norms must be one of 'none', 'batch', 'layer', 'group', got 'instance'"),
        ({"norms": (None, "none")}, "norms must be distinct values, got [None, 'none']"),
        ({"orders": ("act-drop",)}, "orders must be '-'-joined distinct tokens"),
        ({"orders": ("norm-act-act",)}, "got 'norm-act-act'"),
        ({"seeds": 0}, "seeds must be an int >= 1, got 0"),
        ({"seeds": True}, "seeds must be an int >= 1 or a list of distinct ints >= 0, got True"),
        ({"seeds": (0, -1)}, "seeds must be an int >= 1 or a list of distinct ints >= 0, got [0, -1]"),
        ({"seeds": (1, 1)}, "seeds must be distinct values, got [1, 1]"),
    ],
)
def test_bad_dimensions_are_refused_with_the_argument_named(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        tuning.SearchSpace(**kwargs)
