"""Typed configuration: plain YAML data into a tree of frozen dataclasses.

A configuration's schema is a dataclass whose field annotations say what each key holds;
a section is a nested dataclass. :func:`parse_dataclass` builds it from parsed YAML
(mappings, lists, scalars), :func:`load_yaml_dataclass` reads the YAML file first and
:func:`dataclass_to_dict` turns a built tree back into plain data, so that
``parse_dataclass(cls, dataclass_to_dict(obj)) == obj``.

Parsing refuses, with the source file and the dotted key path (``train.batch_size``,
``patches.size[1]``) in the message:

* unknown keys, listing the keys allowed there and the closest spelling;
* missing keys whose field has no default;
* values of the wrong type, showing the type and value received.

Supported annotations: ``bool``, ``int`` (not ``bool``), ``float`` (ints and numeric
strings too: YAML 1.1 reads ``1e-4`` as a string), ``str``, ``Literal[...]`` (a close
spelling is suggested), ``X | None`` (``Optional[X]``), ``tuple[X, ...]`` and fixed
``tuple[X, Y]`` (from YAML lists), ``Mapping[str, ...]`` / ``dict[str, ...]`` (string
keys, values unchecked), ``Any`` and nested dataclasses. An empty nested section
(``train:`` in YAML, i.e. ``None``) takes the section's defaults. The dataclass checks its
own value rules in ``__post_init__``; a ``TypeError`` or ``ValueError`` raised there becomes
the configuration error, prefixed with the section's key path.

Every error is the ``error`` class given by the caller, an
:class:`~ctpipe.errors.InputError` subclass, built as ``error(source, problem)``.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Crop:
    ...     size: tuple[int, int]
    ...     margin: float = 0.0
    ...     label: str | None = None
    >>> parse_dataclass(Crop, {"size": [64, 64], "margin": "1e-1"})
    Crop(size=(64, 64), margin=0.1, label=None)
    >>> parse_dataclass(Crop, {"size": [64, 64], "lable": "x"}, source="crop.yaml")
    Traceback (most recent call last):
    ...
    ctpipe.errors.InputError: crop.yaml: unknown key 'lable'; allowed keys at the top \
level: size, margin, label; did you mean 'label'?
    >>> dataclass_to_dict(Crop((64, 64)))
    {'size': [64, 64], 'margin': 0.0, 'label': None}
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, fields
from os import PathLike
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar, Union

from ctpipe.errors import InputError

__all__ = [
    "dataclass_to_dict",
    "did_you_mean",
    "load_yaml_dataclass",
    "parse_dataclass",
    "read_yaml",
]

_T = TypeVar("_T")


def parse_dataclass(
    cls: type[_T],
    data: object,
    *,
    source: str | PathLike[str] = "<config>",
    error: type[InputError] = InputError,
) -> _T:
    """Build dataclass ``cls`` (and its nested sections) from parsed YAML data.

    Args:
        cls: The schema, a dataclass whose annotations are among those the module lists.
        data: The parsed YAML document: a mapping of ``cls``'s field names.
        source: The file the data came from, named first in every error message.
        error: The exception raised for bad data, an :class:`~ctpipe.errors.InputError`
            subclass built as ``error(source, problem)``.

    Returns:
        The built ``cls``, its tuples, numbers and sections converted to their field types.

    Raises:
        InputError: The ``error`` class, on an unknown or missing key, a value of the wrong
            type or a value that breaks a rule of the dataclass (the message names the key
            path).
        TypeError: When ``cls`` is not a dataclass (a programming error, not bad data).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Loop:
        ...     epochs: int = 1
        >>> parse_dataclass(Loop, {"epochs": 3})
        Loop(epochs=3)
        >>> parse_dataclass(Loop, {"epochs": "3"}, source="loop.yaml")
        Traceback (most recent call last):
        ...
        ctpipe.errors.InputError: loop.yaml: epochs must be an integer, got str '3'
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"cls must be a dataclass type, got {cls!r}")
    return _Parser(source, error).parse(cls, data, "")


def dataclass_to_dict(obj: object) -> Any:
    """Turn a dataclass tree into plain data for YAML or JSON (tuples become lists).

    Dataclasses and mappings become dicts (keys as strings), lists and tuples become lists;
    other values are returned as they are.

    Args:
        obj: A dataclass instance, or any value inside one.

    Returns:
        Plain data that :func:`parse_dataclass` turns back into an equal object.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Patch:
        ...     size: tuple[int, int] = (55, 55)
        ...     options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
        >>> dataclass_to_dict(Patch(options={"flip": True}))
        {'size': [55, 55], 'options': {'flip': True}}
        >>> parse_dataclass(Patch, dataclass_to_dict(Patch())) == Patch()
        True
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: dataclass_to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): dataclass_to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [dataclass_to_dict(v) for v in obj]
    return obj


def load_yaml_dataclass(
    cls: type[_T],
    path: str | PathLike[str],
    *,
    error: type[InputError] = InputError,
    what: str = "config",
) -> _T:
    r"""Read a YAML file and build dataclass ``cls`` from it (:func:`parse_dataclass`).

    Args:
        cls: The schema, a dataclass.
        path: The YAML file (UTF-8).
        error: The exception raised for a bad file, an :class:`~ctpipe.errors.InputError`
            subclass built as ``error(path, problem)``.
        what: What the file is, in the message when it cannot be read, e.g.
            ``"training config"``.

    Returns:
        The built ``cls``.

    Raises:
        InputError: The ``error`` class, naming the file, when it cannot be read, is not
            YAML or does not fit ``cls`` (then also naming the key path).

    Example:
        >>> import tempfile
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Job:
        ...     name: str
        ...     workers: int = 1
        >>> path = Path(tempfile.mkdtemp()) / "job.yaml"
        >>> _ = path.write_text("name: demo\nworkers: 4\n")
        >>> load_yaml_dataclass(Job, path)
        Job(name='demo', workers=4)
        >>> _ = path.write_text("name: demo\nworker: 4\n")
        >>> load_yaml_dataclass(Job, path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ctpipe.errors.InputError: .../job.yaml: unknown key 'worker'; ... 'workers'?
    """
    path = Path(path)
    data = read_yaml(path, error=error, what=what)
    return parse_dataclass(cls, data, source=path, error=error)


def read_yaml(
    path: str | PathLike[str], *, error: type[InputError] = InputError, what: str = "file"
) -> Any:
    """Read a UTF-8 YAML file into plain data, naming the file in any error.

    Args:
        path: The YAML file.
        error: The exception raised, built as ``error(path, problem)``.
        what: What the file is, in the message when it cannot be read.

    Returns:
        The parsed data (dicts, lists, scalars).

    Raises:
        InputError: The ``error`` class, when the file cannot be read or is not YAML.

    Example:
        >>> read_yaml("/nowhere.yaml", what="manifest")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ctpipe.errors.InputError: /nowhere.yaml: cannot read manifest: ...
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise error(path, f"cannot read {what}: {err}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise error(path, f"not valid YAML: {err}") from None


def did_you_mean(word: str, choices: list[str]) -> str:
    """A message suffix suggesting the closest of ``choices`` to ``word``, or ``""``.

    Example:
        >>> "unknown loss 'msee'" + did_you_mean("msee", ["mse", "l1"])
        "unknown loss 'msee'; did you mean 'mse'?"
        >>> did_you_mean("xyz", ["mse", "l1"])
        ''
    """
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- parsing with key paths ----------------------------------------------------------------


def _describe(value: object) -> str:
    """A value's type and shortened repr, e.g. ``"str '16'"``, for error messages."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _join(prefix: str, key: object) -> str:
    name = key if isinstance(key, str) else repr(key)
    return f"{prefix}.{name}" if prefix else str(name)


class _Parser:
    """Checks parsed YAML against annotations; errors name ``source`` and the key path."""

    def __init__(self, source: str | PathLike[str], error: type[InputError]) -> None:
        self.source = source
        self.error = error

    def fail(self, problem: str) -> NoReturn:
        raise self.error(self.source, problem)

    def parse(self, cls: type[_T], data: object, prefix: str) -> _T:
        """Build dataclass ``cls`` from a mapping, checking keys and types against its fields."""
        where = prefix or "the top level"
        if data is None and prefix:
            data = {}  # an empty section in YAML (``train:``) takes the defaults
        if not isinstance(data, Mapping):
            self.fail(f"{where} must be a mapping, got {_describe(data)}")
        allowed = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        for key in data:
            if key not in allowed:
                self.fail(
                    f"unknown key {_join(prefix, key)!r}; allowed keys at {where}: "
                    f"{', '.join(allowed)}{did_you_mean(str(key), allowed)}"
                )
        hints = typing.get_type_hints(cls)
        values = {}
        for item in fields(cls):  # type: ignore[arg-type]
            key = _join(prefix, item.name)
            if item.name not in data:
                if item.default is MISSING and item.default_factory is MISSING:
                    self.fail(f"key {key!r} is required")
                continue
            values[item.name] = self.convert(data[item.name], hints[item.name], key)
        try:
            return cls(**values)
        except (TypeError, ValueError) as err:
            problem = f"{prefix}: {err}" if prefix else str(err)
            raise self.error(self.source, problem) from None

    def convert(self, value: object, hint: Any, key: str) -> Any:
        """Check ``value`` against the annotation ``hint``; return it in the field's type."""
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if hint is Any:
            return value
        if dataclasses.is_dataclass(hint):
            return self.parse(hint, value, key)  # type: ignore[arg-type]
        if origin in (Union, types.UnionType):
            if value is None:
                if type(None) in args:
                    return None
                self.fail(f"{key} must not be null")
            options = [a for a in args if a is not type(None)]
            if len(options) != 1:  # pragma: no cover - no such field
                raise NotImplementedError(f"{key}: unions of several types are not supported")
            return self.convert(value, options[0], key)
        if value is None:
            self.fail(f"{key} must not be null")
        if origin is Literal:
            if value not in args:
                choices = [str(a) for a in args]
                self.fail(
                    f"{key} must be one of {', '.join(choices)}, got {_describe(value)}"
                    + did_you_mean(str(value), choices)
                )
            return value
        if hint is bool:
            if not isinstance(value, bool):
                self.fail(f"{key} must be true or false, got {_describe(value)}")
            return value
        if hint is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(f"{key} must be an integer, got {_describe(value)}")
            return value
        if hint is float:
            return self.to_float(value, key)
        if hint is str:
            if not isinstance(value, str):
                hint_text = " (quote it in YAML)" if isinstance(value, int | float) else ""
                self.fail(f"{key} must be a string{hint_text}, got {_describe(value)}")
            return value
        if origin is tuple:
            return self.to_tuple(value, args, key)
        if origin in (Mapping, dict):
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                self.fail(f"{key} must be a mapping with string keys, got {_describe(value)}")
            return dict(value)
        raise NotImplementedError(f"{key}: unsupported annotation {hint!r}")  # pragma: no cover

    def to_float(self, value: object, key: str) -> float:
        """Accept ints, floats and numeric strings (YAML 1.1 reads ``1e-4`` as a string)."""
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.fail(f"{key} must be a number, got {_describe(value)}")
        try:
            number = float(value)
        except ValueError:
            raise self.error(
                self.source, f"{key} must be a number, got {_describe(value)}"
            ) from None
        if not math.isfinite(number):
            self.fail(f"{key} must be a finite number, got {value!r}")
        return number

    def to_tuple(self, value: object, args: tuple[Any, ...], key: str) -> tuple[Any, ...]:
        """Check a YAML list against ``tuple[X, ...]`` or a fixed ``tuple[X, Y]``."""
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            self.fail(f"{key} must be a list, got {_describe(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            item_types = [args[0]] * len(value)
        else:
            if len(value) != len(args):
                self.fail(f"{key} must be a list of {len(args)} items, got {_describe(value)}")
            item_types = list(args)
        return tuple(
            self.convert(item, item_type, f"{key}[{index}]")
            for index, (item, item_type) in enumerate(zip(value, item_types, strict=True))
        )


def require(ok: bool, rule: str, value: object) -> None:
    """Raise ``ValueError("<rule>, got <value>")`` unless ``ok``.

    Example:
        >>> require(2 > 3, "size must be > 3", 2)
        Traceback (most recent call last):
        ...
        ValueError: size must be > 3, got 2
    """
    if not ok:
        raise ValueError(f"{rule}, got {value!r}")


def require_at_least(section: object, keys: Iterable[str], least: int) -> None:
    """:func:`require` each of the ``keys`` fields of ``section`` to be ``>= least``.

    The rule of many numeric config fields (counts >= 1, intervals and weights >= 0),
    checked in the order of ``keys``.

    Example:
        >>> from types import SimpleNamespace
        >>> loop = SimpleNamespace(epochs=2, batch_size=0)
        >>> require_at_least(loop, ("epochs", "batch_size"), 1)
        Traceback (most recent call last):
        ...
        ValueError: batch_size must be >= 1, got 0
    """
    for key in keys:
        value = getattr(section, key)
        require(value >= least, f"{key} must be >= {least}", value)
