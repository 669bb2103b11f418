"""Option declarations and the one option validator shared by every estimator and command.

An :class:`Option` declares a method option once: its name, type, default, constraint and
help. The registry (:mod:`fecli.estimators`) lists each method's options; the library takes
its defaults and checks from there, and the CLI generates its options and help from there.

Every check returns the normalised value or raises :class:`~fecli.errors.InvalidOptionError`
with one sentence that names the option and says what arrived (scikit-learn style). Booleans
are never accepted as numbers, and numbers must be finite.

This module imports no numpy, so the CLI can read declarations without slowing ``--help``.
"""

from __future__ import annotations

import math
import numbers
import secrets
from dataclasses import dataclass
from typing import Any

from .errors import InvalidOptionError

#: Fresh seeds have at most this many bits, so that JSON readers that parse numbers as
#: IEEE doubles (jq 1.6, JavaScript) read them back exactly: every integer below 2^53 is a double.
SEED_BITS = 53
#: The value type of options that take data: a file path (CLI) or an array / path (library).
DATA = "data"


def fresh_seed() -> int:
    """A random seed in [0, 2^53), drawn from the operating system's entropy (recorded by the caller)."""
    return secrets.randbits(SEED_BITS)


# --------------------------------------------------------------------------- constraints
@dataclass(frozen=True)
class Range:
    """Allowed numeric values: ``low`` and/or ``high`` bounds, each closed unless marked open."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, x: float) -> bool:
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            return False
        return self.high is None or not (x > self.high or (self.high_open and x == self.high))

    def describe(self, integer: bool) -> str:
        """'>= 1', '> 0', 'from 1 to 4', 'in (0, 1)', '<= 10' (empty when unbounded)."""
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            if integer and not (self.low_open or self.high_open):
                return f"from {lo:g} to {hi:g}"
            return f"in {'(' if self.low_open else '['}{lo:g}, {hi:g}{')' if self.high_open else ']'}"
        if lo is not None:
            return f"{'>' if self.low_open else '>='} {lo:g}"
        if hi is not None:
            return f"{'<' if self.high_open else '<='} {hi:g}"
        return ""


#: The usual constraints, by name.
AT_LEAST_ONE = Range(1)
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)
OPEN_UNIT_INTERVAL = Range(0, 1, low_open=True, high_open=True)


def check_int(name: str, value: Any, allowed: Range = AT_LEAST_ONE) -> int:
    """An integer (Python or numpy, never a bool) within ``allowed``."""
    text = f"{name} must be an integer {allowed.describe(integer=True)}".rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidOptionError(f"{text}, got {value!r}.")
    if not allowed.contains(int(value)):
        raise InvalidOptionError(f"{text}, got {int(value)}.")
    return int(value)


def check_number(name: str, value: Any, allowed: Range = Range()) -> float:
    """A finite real number (int, float or numpy scalar, never a bool) within ``allowed``."""
    text = f"{name} must be a finite number {allowed.describe(integer=False)}".rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidOptionError(f"{text}, got {value!r}.")
    value = float(value)
    if not (math.isfinite(value) and allowed.contains(value)):
        raise InvalidOptionError(f"{text}, got {value!r}.")
    return value


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    """One of ``choices``."""
    if isinstance(value, bool) or value not in choices:
        raise InvalidOptionError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}.")
    return value


def check_beta(beta: Any) -> float:
    """An inverse temperature: finite and > 0."""
    return check_number("beta", beta, POSITIVE)


def check_positive_int(name: str, value: Any) -> int:
    """An option that must be an integer >= 1."""
    return check_int(name, value, AT_LEAST_ONE)


def check_seed(seed: Any) -> int:
    """A seed: an integer >= 0 (None is handled by the caller: a fresh seed or a fixed default)."""
    return check_int("seed", seed, NON_NEGATIVE)


# --------------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Option:
    """One option of a method, declared once.

    name : the keyword of the library function (``max_iter``); the CLI flag is ``--max-iter``
        unless ``flag`` says otherwise.
    type : int, float, str (with ``choices``) or :data:`DATA` (a data file or array).
    default : the library's default; None means "not given" and ``none_means`` says what
        the method does then (e.g. "a fresh random seed").
    help : what the option does, without its default or constraint (both are added from
        the declaration wherever help is shown).
    allowed : a :class:`Range` for numbers; ``choices`` for strings.
    cli : False for library-only options (no command-line flag).
    """

    name: str
    type: Any
    default: Any
    help: str
    allowed: Range | None = None
    choices: tuple[Any, ...] | None = None
    none_means: str | None = None
    flag: str | None = None
    cli: bool = True

    def __post_init__(self) -> None:
        if self.default is not None:
            self.check(self.default)  # a declaration whose default breaks its own rule is a bug

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def key(self) -> str:
        """The key its value arrives under from the command line: the flag's name (``--chains`` -> chains)."""
        return self.cli_flag[2:].replace("-", "_")

    def check(self, value: Any, label: str | None = None) -> Any:
        """``value`` normalised (int, float or one of the choices), or InvalidOptionError naming ``label``."""
        label = label or self.name
        if value is None and self.default is None:
            return None
        if self.choices is not None:
            return check_choice(label, value, self.choices)
        if self.type is int:
            return check_int(label, value, self.allowed or Range())
        if self.type is float:
            return check_number(label, value, self.allowed or Range())
        if self.type is str and not isinstance(value, str):
            raise InvalidOptionError(f"{label} must be a string, got {value!r}.")
        if self.type == DATA and value is None:
            raise InvalidOptionError(f"{label} must be a data file or an array, got None.")
        return value

    def describe_constraint(self) -> str:
        if self.choices is not None or self.allowed is None:
            return ""
        return self.allowed.describe(integer=self.type is int)

    def describe_default(self) -> str:
        """The default as help shows it: the value, or what None means."""
        if self.default is None:
            return self.none_means or "none"
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)


def unknown_names_message(kind: str, unknown: list[str], valid: list[str]) -> str:
    """One line for ``unknown`` names of a ``kind`` (e.g. "method"): the closest valid name of each
    (difflib, as git and pip suggest), and the valid names when some name has no close one.

    >>> unknown_names_message("method", ["tpa"], ["exact", "tap", "ais"])
    "unknown method 'tpa'; did you mean 'tap'?"
    """
    import difflib

    if not unknown:
        return f"no {kind} given; valid {kind}s are: {', '.join(valid)}."
    close = {name: difflib.get_close_matches(name, valid, n=1) for name in unknown}
    if len(unknown) == 1 and close[unknown[0]]:
        return f"unknown {kind} {unknown[0]!r}; did you mean {close[unknown[0]][0]!r}?"
    named = ", ".join(repr(n) + (f" (did you mean {close[n][0]!r}?)" if close[n] else "") for n in unknown)
    return f"unknown {kind}{'s' if len(unknown) > 1 else ''} {named}; valid {kind}s are: {', '.join(valid)}."
