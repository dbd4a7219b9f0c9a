"""kreg.checks: every check, what it accepts and returns, and its exact messages."""

import os
import pathlib
import re

import numpy as np
import pytest

from kreg.checks import MAX_SHOWN
from kreg.checks import check_bool
from kreg.checks import check_choice
from kreg.checks import check_finite
from kreg.checks import check_in_range
from kreg.checks import check_int
from kreg.checks import check_path
from kreg.checks import check_positive
from kreg.checks import check_positive_int
from kreg.checks import check_rate
from kreg.checks import check_seed
from kreg.checks import fail
from kreg.checks import is_int
from kreg.checks import is_real
from kreg.checks import shown


def refused(check, *args, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        check(*args)


# --- shown / fail -----------------------------------------------------------


def test_shown_is_repr_for_short_values():
    assert shown("abc") == "'abc'"
    assert shown(1.5) == "1.5"
    assert shown(None) == "None"
    assert shown([1, 2]) == "[1, 2]"


def test_shown_abbreviates_long_values_to_max_shown_characters():
    text = shown("x" * 200)
    assert len(text) == MAX_SHOWN
    assert text == repr("x" * 200)[: MAX_SHOWN - 3] + "..."
    exact = "y" * (MAX_SHOWN - 2)  # repr adds 2 quotes: exactly MAX_SHOWN, kept whole
    assert shown(exact) == repr(exact)


def test_shown_describes_arrays_by_type_shape_and_dtype():
    assert shown(np.zeros((1000, 3), "float32")) == "ndarray of shape (1000, 3) and dtype float32"
    assert shown(np.int64(3)) == "int64 of shape () and dtype int64"


def test_fail_builds_the_message():
    error = fail("units", "an int >= 1", "x" * 200)
    assert isinstance(error, ValueError)
    assert str(error) == f"units must be an int >= 1, got {shown('x' * 200)}"


def test_is_int_and_is_real_refuse_bools():
    assert is_int(3) and is_int(np.int32(3)) and not is_int(True) and not is_int(3.0)
    assert is_real(3) and is_real(np.float32(0.5)) and not is_real(False) and not is_real("1")


# --- check_bool ---------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False, np.bool_(True), np.bool_(False)])
def test_check_bool_accepts_bools(value):
    checked = check_bool("use_bias", value)
    assert type(checked) is bool and checked == bool(value)


@pytest.mark.parametrize("value, text", [("no", "'no'"), (0, "0"), (1, "1"), (None, "None")])
def test_check_bool_refuses(value, text):
    refused(check_bool, "use_bias", value, message=f"use_bias must be True or False, got {text}")


# --- check_int / check_positive_int -------------------------------------------


def test_check_int_accepts_and_returns_python_ints():
    assert check_int("axis", -1) == -1
    checked = check_int("seed", np.int64(3), minimum=0)
    assert type(checked) is int and checked == 3


@pytest.mark.parametrize("value, text", [(1.0, "1.0"), (True, "True"), ("3", "'3'"), (None, "None")])
def test_check_int_refuses_non_ints(value, text):
    refused(check_int, "axis", value, message=f"axis must be an int, got {text}")


def test_check_int_refuses_below_minimum():
    refused(check_int, "seed", -1, 0, message="seed must be an int >= 0, got -1")


def test_check_positive_int():
    checked = check_positive_int("units", np.int64(3))
    assert type(checked) is int and checked == 3
    for bad, text in ((0, "0"), (-2, "-2"), (1.0, "1.0"), (False, "False"), ("3", "'3'")):
        refused(check_positive_int, "units", bad, message=f"units must be an int >= 1, got {text}")


# --- check_seed -----------------------------------------------------------------


def test_check_seed_accepts():
    assert check_seed("seed", None) is None
    assert check_seed("seed", 0) == 0
    checked = check_seed("seed", np.int64(7))
    assert type(checked) is int and checked == 7


@pytest.mark.parametrize("seed, text", [(-1, "-1"), (1.5, "1.5"), (True, "True"), ("0", "'0'")])
def test_check_seed_refuses(seed, text):
    refused(check_seed, "seed", seed, message=f"seed must be None or an int >= 0, got {text}")


# --- check_rate -------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0, 0.0, 0.5, 0.999, np.float32(0.25), np.int64(0)])
def test_check_rate_accepts_and_returns_python_floats(rate):
    checked = check_rate("rate", rate)
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
    refused(check_rate, "rate", rate, message=message)


def test_check_rate_names_the_argument():
    refused(check_rate, "drop_rate", 2, message="drop_rate must be in [0, 1), got 2")


# --- check_positive / check_finite / check_in_range --------------------------------


def test_check_positive():
    checked = check_positive("variance", 2)
    assert type(checked) is float and checked == 2.0
    for bad, text in ((0, "0"), (-1.0, "-1.0"), (float("inf"), "inf"), (float("nan"), "nan")):
        refused(check_positive, "variance", bad, message=f"variance must be a finite number > 0, got {text}")
    refused(check_positive, "variance", "2", message="variance must be a number > 0, got '2'")


def test_check_finite():
    checked = check_finite("mean", -3)
    assert type(checked) is float and checked == -3.0
    refused(check_finite, "mean", float("inf"), message="mean must be a finite number, got inf")
    refused(check_finite, "mean", float("nan"), message="mean must be a finite number, got nan")
    refused(check_finite, "mean", "1", message="mean must be a finite number, got '1'")
    refused(check_finite, "mean", True, message="mean must be a finite number, got True")


def test_check_in_range_is_open():
    assert check_in_range("confidence", 0.95, 0, 1) == 0.95
    for bad, text in ((0, "0"), (1, "1"), (1.5, "1.5"), ("0.9", "'0.9'")):
        refused(check_in_range, "confidence", bad, 0, 1, message=f"confidence must be a number in (0, 1), got {text}")


# --- check_choice / check_path -------------------------------------------------------


def test_check_choice():
    assert check_choice("norm", None, (None, "batch")) is None
    assert check_choice("mask", "batch", ("batch", "example")) == "batch"
    refused(check_choice, "mask", "x", ("batch", "example"), message="mask must be one of 'batch', 'example', got 'x'")
    refused(check_choice, "norm", "group", (None, "batch"), message="norm must be one of None, 'batch', got 'group'")
    # unhashable values are refused by message, not by TypeError
    refused(check_choice, "norm", ["batch"], (None, "batch"), message="norm must be one of None, 'batch', got ['batch']")


def test_check_choice_abbreviates_a_long_value():
    long = "b" * 300
    refused(check_choice, "norm", long, ("batch",), message=f"norm must be one of 'batch', got {shown(long)}")
    assert shown(long).endswith("...")


def test_check_path():
    assert check_path("directory", "runs/x") == "runs/x"
    assert check_path("directory", pathlib.Path("runs") / "x") == os.path.join("runs", "x")
    refused(check_path, "directory", "", message="directory must be a path (str or os.PathLike), got ''")
    refused(check_path, "directory", 3, message="directory must be a path (str or os.PathLike), got 3")


def test_a_refused_array_is_described_not_printed():
    array = np.zeros((500, 4))
    refused(check_rate, "rate", array, message="rate must be a number in [0, 1), got ndarray of shape (500, 4) and dtype float64")
    refused(check_bool, "use_bias", array, message="use_bias must be True or False, got ndarray of shape (500, 4) and dtype float64")
