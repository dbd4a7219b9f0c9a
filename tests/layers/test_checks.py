import re

import numpy as np
import pytest

from kreg.layers.checks import check_choice
from kreg.layers.checks import check_finite
from kreg.layers.checks import check_positive
from kreg.layers.checks import check_positive_int
from kreg.layers.checks import check_rate


@pytest.mark.parametrize("rate", [0, 0.0, 0.5, 0.999, np.float32(0.25), np.int64(0)])
def test_check_rate_accepts_and_returns_python_floats(rate):
    checked = check_rate(rate)
    assert type(checked) is float and checked == float(rate)


@pytest.mark.parametrize(
    "rate, message",
    [
        (1.0, "rate must be in [0, 1), got 1.0"),
        (-0.1, "rate must be in [0, 1), got -0.1"),
        (float("nan"), "rate must be in [0, 1), got nan"),
        ("0.5", "rate must be a number in [0, 1), got '0.5'"),
        (None, "rate must be a number in [0, 1), got None"),
        (True, "rate must be a number in [0, 1), got True"),
    ],
)
def test_check_rate_refuses(rate, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_rate(rate)


def test_check_rate_names_the_argument():
    with pytest.raises(ValueError, match=re.escape("drop_rate must be in [0, 1), got 2")):
        check_rate(2, "drop_rate")


def test_check_positive_and_finite():
    assert check_positive(2, "variance") == 2.0
    assert check_finite(-3, "mean") == -3.0
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=re.escape(f"variance must be a finite number > 0, got {bad}")):
            check_positive(bad, "variance")
    with pytest.raises(ValueError, match=re.escape("mean must be a finite number, got inf")):
        check_finite(float("inf"), "mean")
    with pytest.raises(ValueError, match=re.escape("mean must be a number (finite), got '1'")):
        check_finite("1", "mean")


def test_check_positive_int():
    assert check_positive_int(np.int64(3), "units") == 3
    for bad, shown in ((0, "0"), (-2, "-2"), (1.0, "1.0"), (False, "False"), ("3", "'3'")):
        with pytest.raises(ValueError, match=re.escape(f"units must be a positive integer, got {shown}")):
            check_positive_int(bad, "units")


def test_check_choice():
    assert check_choice(None, "norm", (None, "batch")) is None
    with pytest.raises(ValueError, match=re.escape("mask must be one of 'batch', 'example', got 'x'")):
        check_choice("x", "mask", ("batch", "example"))
    with pytest.raises(ValueError, match=re.escape("norm must be one of None, 'batch', got 'group'")):
        check_choice("group", "norm", (None, "batch"))
