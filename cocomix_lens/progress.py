"""Progress reporting: the one callable type long loops accept, and its tqdm wrappers.

The library never imports tqdm at module level; callers (CLI, pipeline, app) decide
whether to show a bar by passing `progress_bar` (or any callable of the same shape).
Loops that advance by hand (the trainer's steps) take a `step_bar`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

# progress(iterable, total, description) -> iterable
Progress = Callable[[Iterable[Any], "int | None", str], Iterable[Any]]


def no_progress(it: Iterable[Any], total: int | None = None, desc: str = "") -> Iterable[Any]:
    """The silent `Progress`: returns the iterable unchanged."""
    return it


def progress_bar(it: Iterable[Any], total: int | None = None, desc: str = "") -> Iterable[Any]:
    """A tqdm bar on stderr (imported lazily: the library does not depend on it at import)."""
    from tqdm.auto import tqdm

    return tqdm(it, total=total, desc=desc, dynamic_ncols=True)


def progress_for(show: bool) -> Progress:
    """`progress_bar` when `show`, else `no_progress`."""
    return progress_bar if show else no_progress


class _NoBar:
    """The silent step bar."""

    def set_postfix(self, **kw: Any) -> None: ...
    def update(self, n: int = 1) -> None: ...
    def close(self) -> None: ...


def step_bar(total: int, initial: int = 0, desc: str = "", show: bool = True) -> Any:
    """A bar advanced by hand (`update(n)`, `set_postfix(...)`, `close()`); silent unless
    `show`."""
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True)
