"""Bounded numbers: the one range check of every numeric setting (config fields, CLI flags).

A numeric dataclass field declares its range where it is defined,

    lr: float = bounded(6e-4, 0, 10, lo_open=True)   # lr in (0, 10]

and everything that sets it checks that range: `check_fields(obj)` (a config validating
itself), the override engine (`--optim.lr -1`, YAML) and the CLI's flag types, which wrap a
`Range` (training/flags.py). NaN and ±inf are outside every range. Errors are one line naming
the setting, the value, the range and a value that fits.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any

RANGE = "range"  # dataclasses field metadata key
SEED_MAX = 2**32 - 1  # numpy's and torch's seeds both take it


@dataclass(frozen=True)
class Range:
    """Allowed values of a number: [lo, hi] (either end None: unbounded), `lo_open` for
    (lo, hi], `integer` for whole numbers."""

    lo: float | None = None
    hi: float | None = None
    integer: bool = True
    lo_open: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.lo is None and self.hi is None:
            return kind
        left = "(" if self.lo_open else "["
        lo = "-inf" if self.lo is None else self._show(self.lo)
        hi = "inf" if self.hi is None else self._show(self.hi)
        return f"{kind} in {left}{lo}, {hi}]"

    def _show(self, end: float) -> str:
        return f"{int(end):,}" if self.integer else f"{end:g}"

    def contains(self, value: Any) -> bool:
        """True for a number in the range (a tuple: every element in it)."""
        if isinstance(value, tuple):
            return all(self.contains(v) for v in value)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.integer and not float(value).is_integer():
            return False
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return self.hi is None or value <= self.hi

    def example(self) -> str:
        """A value inside the range, for the fix in an error message."""
        if self.lo is not None:
            value = self.lo + (1 if self.integer else 0.1) * self.lo_open
        else:
            value = 0 if self.hi is None or self.hi >= 0 else self.hi
        return str(int(value)) if self.integer else f"{value:g}"

    def check(self, value: Any, name: str) -> Any:
        """`value` if it lies in the range, else a one-line ValueError naming `name`."""
        if not self.contains(value):
            raise ValueError(f"{name}={value!r} is out of range: must be {self.describe()}; "
                             f"fix: e.g. {name}={self.example()}")
        return value


def bounded(default: Any, lo: float | None = None, hi: float | None = None, *,
            integer: bool | None = None, lo_open: bool = False) -> Any:
    """A dataclass field with `default` whose values must lie in [lo, hi] (see Range);
    `integer` defaults to whether the default is an int."""
    whole = isinstance(default, int) if integer is None else integer
    return dataclasses.field(default=default,
                             metadata={RANGE: Range(lo, hi, whole, lo_open)})


def field_range(cls: type, name: str) -> Range | None:
    """The Range a dataclass field declares (None: not a bounded field)."""
    f = {f.name: f for f in dataclasses.fields(cls)}.get(name)
    return None if f is None else f.metadata.get(RANGE)


def check_fields(obj: Any, prefix: str = "") -> None:
    """Check every bounded field of dataclass `obj` and of the dataclasses nested in it (None
    values pass: "unset"); errors name the field as `prefix` + its dotted path."""
    for f in dataclasses.fields(obj):
        rng, value = f.metadata.get(RANGE), getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            check_fields(value, f"{prefix}{f.name}.")
        elif rng is not None and value is not None:
            rng.check(value, f"{prefix}{f.name}")
