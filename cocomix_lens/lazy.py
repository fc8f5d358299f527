"""Lazy package exports: a name is imported from its module on first use.

A package `__init__` lists what it exports and where each name lives:

    __getattr__, __dir__ = lazy_exports(__name__, {"CoCoMixModel": "cocomix_lens.model"})

so `import cocomix_lens` costs milliseconds and `cocomix_lens.CoCoMixModel` imports torch and
TransformerLens when it is first touched (PEP 562, as scipy and others do).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, table: dict[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(`__getattr__`, `__dir__`) for `package` exporting `table`: name -> module path."""

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(table[name]), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
