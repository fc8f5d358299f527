"""Dotted overrides and YAML mappings onto nested dataclasses: the one engine of `train`
and `pipeline`, typed by the fields it sets.

    cfg = apply_overrides(RunConfig(), parse_overrides(["--optim.lr", "3e-4",
                                                        "--model.tie_word_embeddings", "false"]))

Strings become the field's type: bool (true/false, yes/no, on/off, 1/0), int, float, str,
tuples (comma-separated), `X | None` (none/null). A dict field declared with
`schema_field(SomeDataclass)` takes `--section.field.<SomeDataclass field>`, typed by that
dataclass (e.g. `student.overrides.d_model` by CoCoMixConfig). Unknown keys and values of the
wrong type, or outside the Range the field declares (cocomix_lens.bounds: NaN and inf never
fit), are one-line ValueErrors naming the key, the value, the type or range and an example.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from typing import Any

from cocomix_lens.bounds import field_range

SCHEMA = "schema"  # field metadata: the dataclass whose fields a dict field's keys are
SHORTHAND = "shorthand"  # field metadata: unknown keys of the section go into this dict

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_NONE = ("none", "null")


def schema_field(schema: type, shorthand: bool = False) -> Any:
    """A `dict[str, Any]` dataclass field whose keys are fields of `schema`, typed by it;
    with `shorthand`, `--section.<schema field>` lands in it too."""
    return dataclasses.field(default_factory=dict,
                             metadata={SCHEMA: schema, SHORTHAND: shorthand})


# ---- argv -----------------------------------------------------------------------------------
def parse_overrides(argv: list[str]) -> dict[str, str]:
    """['--optim.lr', '3e-4', '--model.d_model=64'] -> {'optim.lr': '3e-4', 'model.d_model': '64'}.
    """
    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ValueError(f"unexpected argument {arg!r}: overrides look like "
                             "--section.key VALUE")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise ValueError(f"override --{key} needs a value: --{key} VALUE")
            value, i = argv[i + 1], i + 1
        out[key.replace("-", "_")] = value
        i += 1
    return out


# ---- dotted overrides -----------------------------------------------------------------------
def apply_overrides(cfg: Any, overrides: dict[str, Any], label: str = "override") -> Any:
    """A copy of the dataclass `cfg` with each dotted key set to its value, coerced to the
    field's type. `label` names the overrides in errors ("pipeline override")."""
    for key, value in overrides.items():
        cfg = _set(cfg, key.split("."), value, key, label)
    return cfg


def _set(obj: Any, parts: list[str], value: Any, key: str, label: str) -> Any:
    fields, hints = _fields(type(obj)), _hints(type(obj))
    name = parts[0]
    if name not in fields:
        into = _shorthand(type(obj))
        if into is not None and len(parts) == 1 and name in _hints(fields[into].metadata[SCHEMA]):
            return _set(obj, [into, name], value, key, label)
        raise ValueError(f"unknown {label} --{key}{_suggest(name, _candidates(type(obj)))}; "
                         f"known keys here: {', '.join(_known(type(obj)))}")
    tp, schema = hints[name], fields[name].metadata.get(SCHEMA)
    if dataclasses.is_dataclass(tp):
        if len(parts) == 1:
            raise ValueError(f"{label} --{key} names a section; set one of its keys instead, "
                             f"e.g. --{key}.{_fields(tp).__iter__().__next__()}")
        return dataclasses.replace(obj, **{name: _set(getattr(obj, name), parts[1:], value,
                                                      key, label)})
    if schema is not None and len(parts) == 2:
        entry = _schema_entry(schema, parts[1], value, f"--{key}", label)
        return dataclasses.replace(obj, **{name: {**getattr(obj, name), parts[1]: entry}})
    if len(parts) > 1:
        head = ".".join(key.split(".")[:len(key.split(".")) - len(parts) + 1])
        raise ValueError(f"{label} --{key}: {name!r} is a value, not a section; pass "
                         f"--{head} VALUE")
    return dataclasses.replace(obj, **{name: in_range(type(obj), name, coerce(
        value, tp, f"--{key}", _example(type(obj), name)), f"--{key}")})


def _schema_entry(schema: type, name: str, value: Any, what: str, label: str) -> Any:
    hints = _hints(schema)
    if name not in hints:
        raise ValueError(f"unknown {label} {what}{_suggest(name, list(hints))}; the keys here "
                         f"are {schema.__name__} fields: {', '.join(hints)}")
    return in_range(schema, name, coerce(value, hints[name], what, _example(schema, name)), what)


# ---- plain mappings (YAML) ------------------------------------------------------------------
def build(cls: type, d: Any, source: str, prefix: str = "") -> Any:
    """An instance of dataclass `cls` from a nested mapping, every value coerced and every
    key checked; errors start with `source` (e.g. the YAML file)."""
    where = prefix.rstrip(".") or "top level"
    if not isinstance(d, dict):
        raise ValueError(f"{source}: {where} must be a mapping (key: value lines), got "
                         f"{type(d).__name__}; fix: correct {where} in {source}")
    fields, hints = _fields(cls), _hints(cls)
    kwargs = {}
    for key, value in d.items():
        if key not in fields:
            raise ValueError(f"{source}: unknown key {prefix + str(key)!r}"
                             f"{_suggest(key, list(fields))}; fix: use one of the keys at "
                             f"{where}: {', '.join(fields)}")
        tp, schema = hints[key], fields[key].metadata.get(SCHEMA)
        what = f"{source}: {prefix}{key}"
        if dataclasses.is_dataclass(tp):
            kwargs[key] = build(tp, value, source, prefix + key + ".")
        elif schema is not None and isinstance(value, dict):
            kwargs[key] = {k: _schema_entry(schema, str(k), v, f"{what}.{k}", "key")
                           for k, v in value.items()}
        else:
            kwargs[key] = in_range(cls, key, coerce(value, tp, what, _example(cls, key)), what)
    return cls(**kwargs)


# ---- values ---------------------------------------------------------------------------------
def coerce(value: Any, tp: Any, what: str, example: str | None = None) -> Any:
    """`value` (a CLI string or a YAML value) as type `tp`, or a one-line ValueError naming
    `what` (the key), the value, the expected type and an example."""
    try:
        return _coerce(value, tp)
    except _Bad as bad:
        hint = (f"; fix: e.g. {what} {example}" if example and what.startswith("--")
                else "; fix: correct the value")
        raise ValueError(f"{what}={value!r}{bad.problem}{hint}") from None


def in_range(cls: type, name: str, value: Any, what: str) -> Any:
    """`value` checked against the Range field `cls.name` declares (cocomix_lens.bounds)."""
    rng = field_range(cls, name)
    return value if rng is None or value is None else rng.check(value, what)


class _Bad(Exception):
    """A value that does not fit; `problem` continues "key=value" in the message."""

    def __init__(self, expected: str, tuple_like: bool = False) -> None:
        self.problem = (f": expected {expected}" if tuple_like
                        else f" is not a valid {expected}")
        super().__init__(self.problem)


def _coerce(value: Any, tp: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in _NONE):
            if type(None) in args:
                return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg)
            except _Bad:
                pass
        raise _Bad(type_name(tp))
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or len(items) != len(args):
            raise _Bad(type_name(tp), tuple_like=True)
        return tuple(_coerce(v, a) for v, a in zip(items, args))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _Bad("mapping")
        return dict(value)
    if tp is Any:
        return value
    return _scalar(value, tp)


def _scalar(value: Any, tp: type) -> Any:
    bad = _Bad(type_name(tp))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        raise bad
    if isinstance(value, bool) or value is None:  # YAML `true` is an int; never a number
        raise bad
    if tp is str:
        if isinstance(value, (dict, list)):
            raise bad
        return str(value)
    try:
        out = tp(value)
    except (TypeError, ValueError):
        raise bad from None
    if tp is int and isinstance(value, float) and out != value:
        raise bad
    return out


def type_name(tp: Any) -> str:
    """'int', 'bool (true/false)', 'int or none', '2 comma-separated values (float, float)'."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names + (["none"] if type(None) in args else []))
    if origin is tuple:
        inner = ", ".join(type_name(a) for a in args)
        return f"{len(args)} comma-separated values ({inner})"
    if tp is bool:
        return "bool (true/false, yes/no, 1/0)"
    return getattr(tp, "__name__", str(tp))


_EXAMPLES = {bool: "true", int: "8", float: "0.1", str: "NAME"}


def _example(cls: type, name: str) -> str:
    """An example CLI value for field `name` of `cls`: its default, else one of its type."""
    f = _fields(cls)[name]
    default = f.default if f.default is not dataclasses.MISSING else None
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, tuple):
        return ",".join(map(str, default))
    if default is not None and not isinstance(default, (dict, list)):
        return str(default)
    tp = _hints(cls)[name]
    base = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
    return _EXAMPLES.get(base[0], "VALUE")


# ---- dataclass introspection (cached: overrides run once per key) ---------------------------
@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.lru_cache(maxsize=None)
def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _shorthand(cls: type) -> str | None:
    return next((n for n, f in _fields(cls).items() if f.metadata.get(SHORTHAND)), None)


def _candidates(cls: type) -> list[str]:
    """Names an unknown key may have been meant as (for "did you mean")."""
    into = _shorthand(cls)
    extra = list(_hints(_fields(cls)[into].metadata[SCHEMA])) if into is not None else []
    return list(_fields(cls)) + extra


def _known(cls: type) -> list[str]:
    known = list(_fields(cls))
    into = _shorthand(cls)
    if into is not None:
        known.append(f"a {_fields(cls)[into].metadata[SCHEMA].__name__} field")
    return known


def _suggest(key: Any, names: list[str]) -> str:
    close = difflib.get_close_matches(str(key), names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
