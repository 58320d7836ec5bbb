"""Lazy package attributes: a package's names are imported when first used.

So ``import ctpipe.io`` (or ``ctpipe.inpaint``, ``ctpipe.workflow``) costs nothing until one
of its names is used, and the CLI stays fast.

Example:
    >>> getattr_ = lazy_exports("pkg", {"math": ("sqrt",)})
    >>> getattr_("sqrt")(9.0)
    3.0
    >>> getattr_("cbrt")
    Traceback (most recent call last):
    ...
    AttributeError: module 'pkg' has no attribute 'cbrt'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, Sequence[str]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` importing each name of ``exports`` (module -> names) when used."""
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(where[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
