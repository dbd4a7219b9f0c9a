"""Argument checks shared by every kreg floor.

One signature, `check_*(name, value, ...)`, and one message style:
`NAME must be ..., got VALUE`, e.g. `ValueError: rate must be in [0, 1), got 1.0`.
Each check returns the value in canonical form (a Python `bool`, `int` or
`float`) and raises `ValueError` before any work is done. Long values (arrays,
long strings) are abbreviated in the message (`shown`).
"""

import math
import numbers
import os

import numpy as np

MAX_SHOWN = 80


def shown(value):
    """`repr(value)`, abbreviated to about `MAX_SHOWN` characters.

    Arrays are described by type, shape and dtype, never printed whole.

    Example:

    >>> shown("x" * 200)[-3:]
    '...'
    """
    shape = getattr(value, "shape", None)
    if shape is not None and getattr(value, "dtype", None) is not None:
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def fail(name, allowed, value):
    """The `ValueError` "NAME must be ALLOWED, got VALUE" (to raise)."""
    return ValueError(f"{name} must be {allowed}, got {shown(value)}")


def is_int(value):
    """True for an integer that is not a bool (numpy integers included)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value):
    """True for a real number that is not a bool (numpy floats included)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_bool(name, value):
    """A real `bool` (numpy bools too); strings such as "no" are refused.

    >>> check_bool("use_bias", False)
    False
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise fail(name, "True or False", value)


def check_int(name, value, minimum=None):
    """An integer (bools refused), at least `minimum` when given.

    >>> check_int("seed", 3, minimum=0)
    3
    """
    if not is_int(value) or (minimum is not None and value < minimum):
        allowed = "an int" if minimum is None else f"an int >= {minimum}"
        raise fail(name, allowed, value)
    return int(value)


def check_positive_int(name, value):
    """An integer >= 1 (bools refused).

    >>> check_positive_int("units", 16)
    16
    """
    return check_int(name, value, minimum=1)


def check_seed(name, value):
    """None or an integer >= 0.

    >>> check_seed("seed", None) is None
    True
    """
    if value is None:
        return None
    if not is_int(value) or value < 0:
        raise fail(name, "None or an int >= 0", value)
    return int(value)


def check_rate(name, value):
    """A dropout-like rate: a real number in [0, 1).

    1.0 is refused: every unit would be dropped and the rescaling divides by 0.

    >>> check_rate("rate", 0.25)
    0.25
    """
    if not is_real(value):
        raise fail(name, "a number in [0, 1)", value)
    if not 0 <= value < 1:  # also refuses NaN
        raise fail(name, "in [0, 1)", value)
    return float(value)


def check_positive(name, value):
    """A finite real number > 0.

    >>> check_positive("variance", 2)
    2.0
    """
    if not is_real(value):
        raise fail(name, "a number > 0", value)
    if not 0 < value < math.inf:  # also refuses NaN
        raise fail(name, "a finite number > 0", value)
    return float(value)


def check_finite(name, value):
    """A finite real number.

    >>> check_finite("mean", -0.5)
    -0.5
    """
    if not is_real(value):
        raise fail(name, "a finite number", value)
    if not math.isfinite(value):
        raise fail(name, "a finite number", value)
    return float(value)


def check_in_range(name, value, low, high):
    """A real number in the open interval (low, high).

    >>> check_in_range("confidence", 0.95, 0, 1)
    0.95
    """
    if not is_real(value) or not low < value < high:
        raise fail(name, f"a number in ({low:g}, {high:g})", value)
    return float(value)


def check_choice(name, value, allowed):
    """One of `allowed` (compared with ==).

    >>> check_choice("mask", "batch", ("batch", "example"))
    'batch'
    """
    if isinstance(value, (list, dict, set)) or value not in allowed:
        options = ", ".join(repr(option) for option in allowed)
        raise fail(name, f"one of {options}", value)
    return value


def check_path(name, value):
    """A path (str or os.PathLike), returned as a str.

    >>> check_path("directory", "runs/x")
    'runs/x'
    """
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise fail(name, "a path (str or os.PathLike)", value)
    return os.fspath(value)
