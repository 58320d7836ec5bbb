"""The manifest model: typed, validated dataclasses and their plain-data form.

A :class:`Manifest` is valid once built: its constructor checks every value and raises
``TypeError``/``ValueError`` naming the key. :meth:`Manifest.from_dict` builds one from
parsed YAML and turns any problem into a ``ManifestError`` naming the file and the key
path (``layout[0].expected_count``), refusing unknown keys with the allowed ones.

Example:
    >>> data = {"manifest_version": 1, "name": "demo", "labels": {"liver": 1}}
    >>> Manifest.from_dict(data).to_dict() == data
    True
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from os import PathLike
from typing import Any, TypeVar

from ctpipe.errors import ManifestError
from ctpipe.io.manifest._checks import (
    describe,
    require_int,
    require_list,
    require_mapping,
    require_relative,
    require_str,
)

__all__ = ["MANIFEST_VERSION", "FileEntry", "LayoutEntry", "Manifest"]

MANIFEST_VERSION = 1
"""The manifest format version this package reads and writes."""

_SHA256 = re.compile(r"[0-9a-f]{64}")
_T = TypeVar("_T")


@dataclass(frozen=True)
class LayoutEntry:
    """A glob under the dataset root and how many files it should match.

    Args:
        pattern: Glob relative to the root, e.g. ``*/full_3mm/*.IMA``.
        expected_count: Number of files the pattern should match; ``None`` to only count.
        description: What the matching files are.

    Example:
        >>> LayoutEntry("imagesTr/*.nii.gz", expected_count=131).expected_count
        131
    """

    pattern: str
    expected_count: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        require_str(self.pattern, "pattern", empty=False)
        require_relative(self.pattern, "pattern")
        if self.expected_count is not None:
            require_int(self.expected_count, "expected_count")
        require_str(self.description, "description")


@dataclass(frozen=True)
class FileEntry:
    """One file of a local dataset, with its size and sha256.

    Args:
        path: Relative POSIX path under the dataset root.
        sha256: Lowercase hex sha256 of the content (64 digits).
        size: Size in bytes.

    Example:
        >>> FileEntry("a.txt", "0" * 64, 5).size
        5
    """

    path: str
    sha256: str
    size: int

    def __post_init__(self) -> None:
        require_str(self.path, "path", empty=False)
        require_relative(self.path, "path")
        require_str(self.sha256, "sha256")
        if not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {self.sha256!r}")
        require_int(self.size, "size")


@dataclass(frozen=True)
class Manifest:
    """A dataset description, valid once built.

    Args:
        name: Short dataset name.
        manifest_version: Format version; must be ``MANIFEST_VERSION`` (1).
        description: What the data is, including its known quirks.
        source: Where to download it and what to cite.
        licence: The licence or usage terms.
        version: The dataset's own release, e.g. ``"1.0"``.
        layout: Expected globs and counts.
        splits: Split name -> case/patient ids; a case may be in one split only.
        labels: Label name -> integer value in the label maps.
        files: Every file with size and sha256, or ``None`` when not pinned.

    Example:
        >>> m = Manifest("demo", splits={"train": ["L096"], "test": ["L192"]})
        >>> m.splits["test"]
        ('L192',)
    """

    name: str
    manifest_version: int = MANIFEST_VERSION
    description: str = ""
    source: str = ""
    licence: str = ""
    version: str = ""
    layout: Sequence[LayoutEntry] = ()
    splits: Mapping[str, Sequence[str]] = field(default_factory=dict)
    labels: Mapping[str, int] = field(default_factory=dict)
    files: Sequence[FileEntry] | None = None

    def __post_init__(self) -> None:
        require_str(self.name, "name", empty=False)
        require_int(self.manifest_version, "manifest_version")
        if self.manifest_version != MANIFEST_VERSION:
            raise ValueError(
                f"manifest_version must be {MANIFEST_VERSION} (the only format this ctpipe "
                f"reads), got {self.manifest_version}"
            )
        for key in ("description", "source", "licence", "version"):
            require_str(getattr(self, key), key)
        require_list(self.layout, "layout", LayoutEntry)
        object.__setattr__(self, "layout", tuple(self.layout))
        object.__setattr__(self, "splits", self._checked_splits())
        object.__setattr__(self, "labels", self._checked_labels())
        if self.files is not None:
            object.__setattr__(self, "files", self._checked_files(self.files))

    def _checked_splits(self) -> dict[str, tuple[str, ...]]:
        require_mapping(self.splits, "splits")
        owner: dict[str, str] = {}
        for split, ids in self.splits.items():
            require_str(split, f"splits key {split!r}", empty=False)
            require_list(ids, f"splits.{split}")
            for index, case in enumerate(ids):
                require_str(case, f"splits.{split}[{index}]", empty=False)
                if case in owner:
                    raise ValueError(
                        f"splits: case {case!r} is in both {owner[case]!r} and {split!r}; "
                        "a case may be in one split only"
                    )
                owner[case] = split
        return {split: tuple(ids) for split, ids in self.splits.items()}

    def _checked_labels(self) -> dict[str, int]:
        require_mapping(self.labels, "labels")
        names: dict[int, str] = {}
        for name, value in self.labels.items():
            require_str(name, f"labels key {name!r}", empty=False)
            require_int(value, f"labels.{name}")
            if value in names:
                raise ValueError(
                    f"labels: value {value} is used by both {names[value]!r} and {name!r}"
                )
            names[value] = name
        return dict(self.labels)

    @staticmethod
    def _checked_files(files: Sequence[FileEntry]) -> tuple[FileEntry, ...]:
        require_list(files, "files", FileEntry)
        seen: set[str] = set()
        for entry in files:
            if entry.path in seen:
                raise ValueError(f"files: path {entry.path!r} is listed twice")
            seen.add(entry.path)
        return tuple(files)

    @classmethod
    def from_dict(cls, data: object, *, source: str | PathLike[str] = "<manifest>") -> Manifest:
        """Build a manifest from parsed YAML, naming the key path of any problem.

        Args:
            data: The parsed YAML document.
            source: The file it came from, used in error messages.

        Returns:
            The validated manifest.

        Raises:
            ManifestError: On an unknown or missing key or a value of the wrong type.

        Example:
            >>> Manifest.from_dict({"manifest_version": 1, "name": "demo"}).name
            'demo'
        """
        values = _checked_keys(cls, data, "", source)
        if "layout" in values:
            values["layout"] = _build_list(LayoutEntry, values["layout"], "layout", source)
        if values.get("files") is not None:
            values["files"] = _build_list(FileEntry, values["files"], "files", source)
        return _construct(cls, values, "", source)

    def to_dict(self) -> dict[str, Any]:
        """Return plain data for YAML or JSON, leaving out empty optional fields.

        Example:
            >>> Manifest("demo").to_dict()
            {'manifest_version': 1, 'name': 'demo'}
        """
        data: dict[str, Any] = {"manifest_version": self.manifest_version, "name": self.name}
        for key in ("version", "description", "source", "licence"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        if self.labels:
            data["labels"] = dict(self.labels)
        if self.splits:
            data["splits"] = {split: list(ids) for split, ids in self.splits.items()}
        if self.layout:
            data["layout"] = [_layout_dict(entry) for entry in self.layout]
        if self.files is not None:
            data["files"] = [
                {"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files
            ]
        return data


def _layout_dict(entry: LayoutEntry) -> dict[str, Any]:
    data: dict[str, Any] = {"pattern": entry.pattern}
    if entry.expected_count is not None:
        data["expected_count"] = entry.expected_count
    if entry.description:
        data["description"] = entry.description
    return data


# --- parsing with key paths -----------------------------------------------------------------


def _join(prefix: str, key: object) -> str:
    name = key if isinstance(key, str) else repr(key)
    return f"{prefix}.{name}" if prefix else str(name)


def _checked_keys(
    cls: type, data: object, prefix: str, source: str | PathLike[str]
) -> dict[str, Any]:
    """Return ``data`` as a dict after refusing unknown keys and requiring missing ones."""
    where = prefix or "the top level"
    if not isinstance(data, Mapping):
        raise ManifestError(source, f"{where} must be a mapping, got {describe(data)}")
    allowed = [f.name for f in fields(cls)]
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ManifestError(
                source,
                f"unknown key {_join(prefix, key)!r}; allowed keys at {where}: "
                f"{', '.join(allowed)}{hint}",
            )
    for item in fields(cls):
        required = item.default is MISSING and item.default_factory is MISSING
        if required and item.name not in data:
            raise ManifestError(source, f"key {_join(prefix, item.name)!r} is required")
    return dict(data)


def _construct(
    cls: type[_T], values: dict[str, Any], prefix: str, source: str | PathLike[str]
) -> _T:
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ManifestError(source, f"{prefix}.{err}" if prefix else str(err)) from None


def _build_list(cls: type[_T], items: object, key: str, source: str | PathLike[str]) -> list[_T]:
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise ManifestError(source, f"{key} must be a list, got {describe(items)}")
    built = []
    for index, item in enumerate(items):
        prefix = f"{key}[{index}]"
        built.append(_construct(cls, _checked_keys(cls, item, prefix, source), prefix, source))
    return built
