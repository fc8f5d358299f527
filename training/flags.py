"""Numeric CLI flags: argparse types that refuse what is out of range, in one line.

Every numeric flag of every command takes one of these as its `type` (tests/test_bounds.py
walks every parser and checks it); a flag that sets a config field takes the field's own
Range (`field_flag`), so the flag and `--section.key` / YAML agree.

    p.add_argument("--top", type=number(1, 100_000), default=20)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from cocomix_lens.bounds import SEED_MAX, Range, field_range


def number(lo: float | None = None, hi: float | None = None, *, integer: bool = True,
           lo_open: bool = False) -> Callable[[str], Any]:
    """An argparse `type`: the text as an int (or float), inside Range(lo, hi)."""
    return _flag_type(Range(lo, hi, integer, lo_open))


def field_flag(cls: type, name: str) -> Callable[[str], Any]:
    """The argparse `type` of a flag that sets bounded dataclass field `cls.name`."""
    rng = field_range(cls, name)
    if rng is None:
        raise TypeError(f"{cls.__name__}.{name} declares no range (cocomix_lens.bounds)")
    return _flag_type(rng)


def _flag_type(rng: Range) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = int(text) if rng.integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {rng.describe()}") from None
        if not rng.contains(value):
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be "
                                             f"{rng.describe()}, e.g. {rng.example()}")
        return value

    parse.range = rng  # type: ignore[attr-defined]  # read by the bounds test
    parse.__name__ = "integer" if rng.integer else "number"
    return parse


SEED = number(0, SEED_MAX)
SAMPLES = number(1, 100_000)
NEW_TOKENS = number(1, 1 << 20)
TEMPERATURE = number(0, 100, integer=False)
TOP_P = number(0, 1, integer=False, lo_open=True)
