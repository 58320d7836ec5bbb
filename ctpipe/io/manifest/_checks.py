"""Checks of single manifest values and of a dataset root, naming the key, rule and value.

The model's constructors raise ``TypeError``/``ValueError`` from here; parsing turns them
into ``ManifestError`` with the file and key path.

Example:
    >>> require_int(-1, "size")
    Traceback (most recent call last):
    ...
    ValueError: size must be >= 0, got -1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

from ctpipe.errors import InputError


def describe(value: object) -> str:
    """Return a value's type and a shortened repr, e.g. ``"int 3"``, for error messages."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def require_str(value: object, key: str, *, empty: bool = True) -> None:
    """Raise unless ``value`` is a string (non-blank unless ``empty``)."""
    if not isinstance(value, str):
        hint = " (quote it in YAML)" if isinstance(value, int | float | bool) else ""
        raise TypeError(f"{key} must be a string{hint}, got {describe(value)}")
    if not empty and not value.strip():
        raise ValueError(f"{key} must not be empty")


def require_int(value: object, key: str, *, minimum: int = 0) -> None:
    """Raise unless ``value`` is an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key} must be an integer, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{key} must be >= {minimum}, got {value}")


def require_relative(value: str, key: str) -> None:
    """Raise unless ``value`` is a relative POSIX path without ``..``, ``.`` or empty parts."""
    parts = value.split("/")
    if value.startswith("/") or "\\" in value or any(p in ("", ".", "..") for p in parts):
        raise ValueError(
            f"{key} must be a relative POSIX path without '..', '.', empty parts or "
            f"backslashes, got {value!r}"
        )


def require_list(value: object, key: str, item_type: type | None = None) -> None:
    """Raise unless ``value`` is a list (not a string), of ``item_type`` items when given."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(f"{key} must be a list, got {describe(value)}")
    if item_type is None:
        return
    for index, item in enumerate(value):
        if not isinstance(item, item_type):
            raise TypeError(f"{key}[{index}] must be a {item_type.__name__}, got {describe(item)}")


def require_mapping(value: object, key: str) -> None:
    """Raise unless ``value`` is a mapping."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{key} must be a mapping, got {describe(value)}")


def require_root(root: str | PathLike[str]) -> Path:
    """Return ``root`` as a path, raising ``InputError`` unless it is an existing folder."""
    root = Path(root)
    if not root.exists():
        raise InputError(root, "dataset root folder does not exist")
    if not root.is_dir():
        raise InputError(root, "dataset root is not a folder")
    return root
