"""Argument validators shared by kreg layers.

Each check returns the value in canonical form (a Python `float` or `int`) and
raises `ValueError` naming the argument, the bad value and what is allowed,
e.g. `ValueError: rate must be in [0, 1), got 1.0`.
"""

import math
import numbers


def _require_real(value, name, allowed):
    # bool is an Integral in Python, but `rate=True` is always a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number {allowed}, got {value!r}")


def check_rate(rate, name="rate"):
    """Checks a dropout-like rate: a real number in [0, 1).

    1.0 is refused: every unit would be dropped and the rescaling divides by 0.

    Args:
        rate: the value to check.
        name: the argument name used in the error message.

    Returns:
        `rate` as a Python float.

    Example:

    >>> check_rate(0.25)
    0.25
    """
    _require_real(rate, name, "in [0, 1)")
    if not 0 <= rate < 1:  # also refuses NaN
        raise ValueError(f"{name} must be in [0, 1), got {rate}")
    return float(rate)


def check_positive(value, name):
    """Checks a finite real number > 0 and returns it as a Python float.

    Example:

    >>> check_positive(2, "variance")
    2.0
    """
    _require_real(value, name, "> 0")
    if not 0 < value < math.inf:  # also refuses NaN
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def check_finite(value, name):
    """Checks a finite real number and returns it as a Python float.

    Example:

    >>> check_finite(-0.5, "mean")
    -0.5
    """
    _require_real(value, name, "(finite)")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return float(value)


def check_positive_int(value, name):
    """Checks an integer > 0 (bools refused) and returns it as a Python int.

    Example:

    >>> check_positive_int(16, "units")
    16
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_choice(value, name, allowed):
    """Checks that `value` is one of `allowed` and returns it.

    Example:

    >>> check_choice("batch", "mask", ("batch", "example"))
    'batch'
    """
    if value not in allowed:
        options = ", ".join(repr(option) for option in allowed)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value
