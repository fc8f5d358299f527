"""The fix of an error as data: the workflow step that makes the thing at fault (again), with
its arguments in API words.

    raise attach(ValueError(f"{path} is damaged; fix: {fix}"), fix)
    # fix = Remedy("prepare", {"out": root, "force": True})
    # str(err):                     ...; fix: re-run the prepare step (out='data', force=True)
    # the CLI (training/cli.py):    ...; fix: re-run `cocomix-lens prepare --out data --force`

The library names steps and arguments, never command lines: a caller with another
vocabulary rewrites each remedy's text from its fields (`Remedy.step`, `Remedy.args`) wherever
it appears in the message. A step is one of the workflow's: prepare, labels, train, pipeline,
catalog, steer-eval, steer-bench, study.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

E = TypeVar("E", bound=BaseException)


@dataclass(frozen=True, eq=False)
class Remedy:
    step: str
    """The workflow step that makes the thing at fault: "prepare", "labels", "catalog", ..."""
    args: dict[str, Any] = field(default_factory=dict)
    """Its arguments, API names (`out`, `force`, `tokenizer_file`): True for a switch."""
    more: bool = False
    """True: the step's other arguments as they were (rendered "...")."""
    verb: str = "re-run"
    """What to do with the step: "re-run", "run", "rebuild it with", ..."""

    def __str__(self) -> str:
        parts = [f"{k}={str(v) if isinstance(v, Path) else v!r}" for k, v in self.args.items()]
        if self.more:
            parts.append("..." if parts else "the same arguments")
        return f"{self.verb} the {self.step} step" + (f" ({', '.join(parts)})" if parts else "")


def attach(err: E, *remedies: Remedy) -> E:
    """`err` carrying `remedies` (kept with any it carries already); returns it, to raise."""
    err.remedies = [*getattr(err, "remedies", []), *remedies]  # type: ignore[attr-defined]
    return err


def remedies_of(err: BaseException) -> list[Remedy]:
    """The remedies `err` and the exceptions it was raised from (cause, context) carry."""
    found: list[Remedy] = []
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        found += getattr(err, "remedies", [])
        err = err.__cause__ or err.__context__
    return found


@contextmanager
def remedied(*fixes: Any) -> Iterator[None]:
    """Attach the Remedy objects among `fixes` (the strings are not) to any exception raised
    inside (a reader given `fix=Remedy(...)` raises it with its own message)."""
    try:
        yield
    except Exception as err:
        raise attach(err, *(f for f in fixes if isinstance(f, Remedy)))
