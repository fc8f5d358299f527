"""Progress reporting: the one callable type long loops accept, and its tqdm wrapper.

The library never imports tqdm at module level; callers (CLI, pipeline, app) decide
whether to show a bar by passing `progress_bar` (or any callable of the same shape).
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
