"""The one place where user-supplied numbers and indices are checked.

Every public constructor, parser and file reader that takes a number from a user calls one of these
functions, so that a wrong value always gives a :class:`~qsim_dist.errors.QsimDistError` subclass
whose one-line message names the argument (``what``) and the values it allows. Each function returns
the value converted to a plain Python ``int`` or ``float``; none of them coerces silently (``True``,
``"0"``, ``0.5`` are not integers; ``nan``, ``inf``, ``"1.0"``, ``1j`` are not finite reals).

``error`` is the exception class to raise (a ``QsimDistError`` subclass); the default is
:class:`~qsim_dist.errors.OptionError`.

>>> count(3, "shots")
3
>>> count(True, "shots")
Traceback (most recent call last):
    ...
qsim_dist.errors.OptionError: shots must be an integer >= 0, got True
>>> finite(float("nan"), "angle")
Traceback (most recent call last):
    ...
qsim_dist.errors.OptionError: angle must be a finite real number, got nan
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .errors import OptionError, QsimDistError

__all__ = ["integer", "count", "index", "indices", "finite", "finite_complex", "non_negative",
           "positive", "positive_time", "probability", "in_range", "one_of", "instance", "text",
           "describe", "MAX_EXPANDED_INSTRUCTIONS"]

#: The most instructions that expanding gate definitions (OpenQASM ``gate`` bodies, converted
#: Qiskit/Cirq definitions, the decomposition pass) may produce, counted at every level of
#: nesting as they are produced: ten nested definitions that each call the previous one twice are
#: only ten lines but expand to 2^10 times the innermost body, and such a file would otherwise
#: run for minutes or exhaust memory. Readers take a keyword to lower or raise it.
MAX_EXPANDED_INSTRUCTIONS = 10_000_000


def describe(value: Any) -> str:
    """A short, one-line rendering of ``value`` for an error message."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit for str()
        text = f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    if len(text) > 60:
        text = text[:57] + "..."
    return text.replace("\n", " ")


def _fail(error: type[QsimDistError], what: str, allowed: str, value: Any) -> QsimDistError:
    return error(f"{what} must be {allowed}, got {describe(value)}")


def _is_integer(value: Any) -> bool:
    # bool is an int subclass, but True as a qubit or a count is always a mistake.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def integer(value: Any, what: str, error: type[QsimDistError] = OptionError) -> int:
    """Return ``value`` as an ``int``; refuse bools, floats (even ``2.0``), strings and the like."""
    if not _is_integer(value):
        raise _fail(error, what, "an integer", value)
    return int(value)


def count(value: Any, what: str, error: type[QsimDistError] = OptionError, *, minimum: int = 0,
          maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` in ``[minimum, maximum]`` (a number of things, default >= 0)."""
    if not _is_integer(value) or not (minimum <= value and (maximum is None or value <= maximum)):
        bound = f"an integer >= {minimum}" if maximum is None else \
            f"an integer in [{minimum}, {maximum}]"
        raise _fail(error, what, bound, value)
    return int(value)


def index(value: Any, size: int, what: str, error: type[QsimDistError] = OptionError) -> int:
    """Return ``value`` as an ``int`` in ``[0, size)``; negative indices never wrap around."""
    if not _is_integer(value) or not 0 <= value < size:
        allowed = f"an integer in [0, {size - 1}]" if size > 0 else "an index, but there are none"
        raise _fail(error, what, allowed, value)
    return int(value)


def indices(values: Any, size: int, what: str, error: type[QsimDistError] = OptionError, *,
            distinct: bool = True) -> tuple[int, ...]:
    """Return a sequence of indices in ``[0, size)`` as a tuple of ``int`` (each once, if
    ``distinct``); a bare integer or a string is not a sequence of indices."""
    if isinstance(values, (str, bytes)) or _is_integer(values) or not hasattr(values, "__iter__"):
        raise _fail(error, what, "a list of integers", values)
    out = tuple(index(v, size, f"{what}[{j}]", error) for j, v in enumerate(values))
    if distinct and len(set(out)) != len(out):
        dup = next(v for v in out if out.count(v) > 1)
        raise error(f"{what} must not repeat an index, got {dup} twice in {describe(list(out))}")
    return out


def finite(value: Any, what: str, error: type[QsimDistError] = OptionError) -> float:
    """Return ``value`` as a finite ``float``; refuse nan, +-inf, complex, bools and strings."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(error, what, "a finite real number", value)
    try:
        out = float(value)
    except (OverflowError, ValueError, TypeError):  # e.g. an int too large for a float
        raise _fail(error, what, "a finite real number", value) from None
    if not math.isfinite(out):
        raise _fail(error, what, "a finite real number", value)
    return out


def finite_complex(value: Any, what: str, error: type[QsimDistError] = OptionError) -> complex:
    """Return ``value`` as a ``complex`` whose real and imaginary parts are finite."""
    if isinstance(value, bool) or not isinstance(value, numbers.Complex):
        raise _fail(error, what, "a finite (real or complex) number", value)
    try:
        out = complex(value)
    except (OverflowError, ValueError, TypeError):
        raise _fail(error, what, "a finite (real or complex) number", value) from None
    if not (math.isfinite(out.real) and math.isfinite(out.imag)):
        raise _fail(error, what, "a finite (real or complex) number", value)
    return out


def in_range(value: Any, low: float, high: float, what: str,
             error: type[QsimDistError] = OptionError) -> float:
    """Return ``value`` as a finite ``float`` in the closed interval ``[low, high]``."""
    out = finite(value, what, error)
    if not low <= out <= high:
        raise _fail(error, what, f"in [{low:g}, {high:g}]", value)
    return out


def non_negative(value: Any, what: str, error: type[QsimDistError] = OptionError) -> float:
    """Return ``value`` as a finite ``float`` >= 0."""
    out = finite(value, what, error)
    if out < 0:
        raise _fail(error, what, "a non-negative number (finite)", value)
    return out


def positive(value: Any, what: str, error: type[QsimDistError] = OptionError) -> float:
    """Return ``value`` as a finite ``float`` > 0."""
    out = finite(value, what, error)
    if not out > 0:
        raise _fail(error, what, "a positive number (finite)", value)
    return out


def positive_time(value: Any, what: str, error: type[QsimDistError] = OptionError) -> float:
    """Return ``value`` as a duration: a finite ``float`` > 0 (``inf`` would never end)."""
    return positive(value, what, error)


def probability(value: Any, what: str, error: type[QsimDistError] = OptionError) -> float:
    """Return ``value`` as a probability: a finite ``float`` in ``[0, 1]``."""
    return in_range(value, 0.0, 1.0, what, error)


def one_of(value: Any, choices: Any, what: str, error: type[QsimDistError] = OptionError) -> Any:
    """Return ``value`` when it is one of ``choices`` (compared by equality, same type)."""
    for choice in choices:
        if type(value) is type(choice) and value == choice:
            return value
    raise _fail(error, what, "one of " + ", ".join(describe(c) for c in choices), value)


def instance(value: Any, cls: type | tuple[type, ...], what: str,
             error: type[QsimDistError] = OptionError) -> Any:
    """Return ``value`` when it is an instance of ``cls``."""
    if not isinstance(value, cls):
        names = " or ".join(c.__name__ for c in (cls if isinstance(cls, tuple) else (cls,)))
        raise error(f"{what} must be a {names}, got {type(value).__name__} {describe(value)}")
    return value


def text(value: Any, what: str, error: type[QsimDistError] = OptionError) -> str:
    """Return ``value`` when it is a ``str``."""
    if not isinstance(value, str):
        raise _fail(error, what, "a string", value)
    return value
