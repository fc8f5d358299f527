"""The one "refuse a directory built differently" check.

A run directory, a label cache or a checkpoint records what defines it (its identity: config
fields, hashes of its inputs). Reusing it with another identity would mix two builds, so
every writer compares the recorded identity with its own and refuses with one line that
names each difference and the fix:

    check_identity(f"{root} holds a label cache", old_meta, new_meta, keys=IDENTITY,
                   fix="pass another root=DIR, or the same settings to resume it")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SHOWN = 6  # differences named in the message; more are counted


def differences(old: Mapping[str, Any], new: Mapping[str, Any],
                keys: Iterable[str] | None = None) -> list[str]:
    """"key=old (now new)" for each key (default: every key of either) whose values differ."""
    keys = sorted(set(old) | set(new)) if keys is None else list(keys)
    return [f"{k}={old.get(k)!r} (now {new.get(k)!r})" for k in keys if old.get(k) != new.get(k)]


def check_identity(what: str, old: Mapping[str, Any], new: Mapping[str, Any], *, fix: str,
                   keys: Iterable[str] | None = None) -> None:
    """ValueError "`what` built differently: a=1 (now 2); ...; fix: `fix`" if they differ."""
    diff = differences(old, new, keys)
    if diff:
        more = f"; and {len(diff) - SHOWN} more" if len(diff) > SHOWN else ""
        raise ValueError(f"{what} built differently: {'; '.join(diff[:SHOWN])}{more}; "
                         f"fix: {fix}")
