"""Numeric CLI flags: argparse types that refuse what is out of range, in one line.

Every numeric flag of every command takes one of these as its `type` (tests/test_bounds.py
walks every parser and checks it); a flag that sets a config field takes the field's own
Range (`field_flag`), so the flag and `--section.key` / YAML agree.

    p.add_argument("--top", type=number(1, 100_000), default=20)

A dataclass whose fields declare their ranges becomes flags at once (`add_flags`): each field
a `--field-name` flag typed by its Range, its attribute docstring the help.

    add_flags(parser, Sampling)                    # --max-new-tokens, --temperature, ...
    sampling = from_flags(Sampling, args)
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import textwrap
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
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of this kind: must be "
                                             f"{rng.describe()}") from None
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


@functools.lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass: {field name: the string literal under it}."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)):
            docs[node.target.id] = str(nxt.value.value)
    return docs


def add_flags(parser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One `--field-name` flag per field of dataclass `cls` (but `skip`), typed by its Range
    ("none" accepted where the field may be None) and with its attribute docstring as help:
    e.g. `Sampling`'s fields become `--temperature`."""
    defaults = cls()
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        value = getattr(defaults, f.name)
        kind = field_flag(cls, f.name)
        if "None" in str(f.type):
            kind = _or_none(kind)
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind,
                            default=value,
                            help=f"{field_docs(cls).get(f.name, '')} (default {value})")


def from_flags(cls: type, args: Any, **extra: Any) -> Any:
    """The dataclass `cls` from parsed `add_flags` arguments (`extra` fields win)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{**{k: v for k, v in vars(args).items() if k in names}, **extra})


def _or_none(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """`parse`, also taking "none" for None."""
    def parse_or_none(text: str) -> Any:
        return None if text.strip().lower() == "none" else parse(text)

    parse_or_none.range = parse.range  # type: ignore[attr-defined]
    parse_or_none.__name__ = parse.__name__
    return parse_or_none
