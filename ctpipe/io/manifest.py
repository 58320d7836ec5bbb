"""Data manifests: what a dataset should hold, and a check that a local copy does.

A manifest is a YAML file describing a dataset that users download themselves: where it
comes from, its licence, the expected folder layout and file counts, the case splits, the
label values and, for data held locally, the size and sha256 of every file. Loading a
manifest validates it: unknown keys are refused with their key path and the allowed keys,
and values of the wrong type are named.

Paths in a manifest are relative POSIX paths under the dataset root. Layout patterns are
globs matched one path segment at a time: ``*``, ``?`` and ``[...]`` stay inside one
segment, and a ``**`` segment matches zero or more folders. Hidden files and folders
(names starting with ``.``, such as ``.DS_Store`` or the ``._*`` files of macOS archives)
are never listed, counted or hashed.

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "a.txt").write_text("hello")
    >>> manifest = create_manifest(root, name="demo")
    >>> [(f.path, f.size) for f in manifest.files]
    [('a.txt', 5)]
    >>> verify_manifest(manifest, root).ok
    True
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from fnmatch import fnmatchcase
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml

from ctpipe.errors import InputError, ManifestError

__all__ = [
    "CHUNK_SIZE",
    "MANIFEST_VERSION",
    "FileChange",
    "FileEntry",
    "LayoutEntry",
    "LayoutResult",
    "Manifest",
    "Progress",
    "VerifyReport",
    "create_manifest",
    "hash_files",
    "list_files",
    "load_manifest",
    "match_pattern",
    "read_header",
    "save_manifest",
    "sha256_file",
    "verify_files",
    "verify_manifest",
]

MANIFEST_VERSION = 1
"""The manifest format version this module reads and writes."""

CHUNK_SIZE = 1 << 20
"""Bytes read at a time while hashing (1 MiB)."""

Progress = Callable[[Sequence[str]], Iterable[str]]
"""Wraps the list of relative paths about to be hashed, e.g. ``lambda p: tqdm(p)``."""

_SHA256 = re.compile(r"[0-9a-f]{64}")
_T = TypeVar("_T")


# --- value checks -------------------------------------------------------------------------


def _describe(value: object) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _require_str(value: object, key: str, *, empty: bool = True) -> None:
    if not isinstance(value, str):
        hint = " (quote it in YAML)" if isinstance(value, int | float | bool) else ""
        raise TypeError(f"{key} must be a string{hint}, got {_describe(value)}")
    if not empty and not value.strip():
        raise ValueError(f"{key} must not be empty")


def _require_int(value: object, key: str, *, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key} must be an integer, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{key} must be >= {minimum}, got {value}")


def _require_relative(value: str, key: str) -> None:
    parts = value.split("/")
    if value.startswith("/") or "\\" in value or any(p in ("", ".", "..") for p in parts):
        raise ValueError(
            f"{key} must be a relative POSIX path without '..', '.', empty parts or "
            f"backslashes, got {value!r}"
        )


def _require_sequence(value: object, key: str) -> None:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(f"{key} must be a list, got {_describe(value)}")


def _require_items(values: Sequence[object], kind: type, key: str) -> None:
    for index, item in enumerate(values):
        if not isinstance(item, kind):
            raise TypeError(f"{key}[{index}] must be a {kind.__name__}, got {_describe(item)}")


def _require_mapping(value: object, key: str) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"{key} must be a mapping, got {_describe(value)}")


# --- model --------------------------------------------------------------------------------


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
        _require_str(self.pattern, "pattern", empty=False)
        _require_relative(self.pattern, "pattern")
        if self.expected_count is not None:
            _require_int(self.expected_count, "expected_count")
        _require_str(self.description, "description")


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
        _require_str(self.path, "path", empty=False)
        _require_relative(self.path, "path")
        _require_str(self.sha256, "sha256")
        if not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {self.sha256!r}")
        _require_int(self.size, "size")


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
        _require_str(self.name, "name", empty=False)
        _require_int(self.manifest_version, "manifest_version")
        if self.manifest_version != MANIFEST_VERSION:
            raise ValueError(
                f"manifest_version must be {MANIFEST_VERSION} (the only format this ctpipe "
                f"reads), got {self.manifest_version}"
            )
        for key in ("description", "source", "licence", "version"):
            _require_str(getattr(self, key), key)
        object.__setattr__(self, "layout", self._checked_layout())
        object.__setattr__(self, "splits", self._checked_splits())
        object.__setattr__(self, "labels", self._checked_labels())
        object.__setattr__(self, "files", self._checked_files())

    def _checked_layout(self) -> tuple[LayoutEntry, ...]:
        _require_sequence(self.layout, "layout")
        _require_items(self.layout, LayoutEntry, "layout")
        return tuple(self.layout)

    def _checked_splits(self) -> dict[str, tuple[str, ...]]:
        _require_mapping(self.splits, "splits")
        owner: dict[str, str] = {}
        for split, ids in self.splits.items():
            _require_str(split, f"splits key {split!r}", empty=False)
            _require_sequence(ids, f"splits.{split}")
            for index, case in enumerate(ids):
                _require_str(case, f"splits.{split}[{index}]", empty=False)
                if case in owner:
                    raise ValueError(
                        f"splits: case {case!r} is in both {owner[case]!r} and {split!r}; "
                        "a case may be in one split only"
                    )
                owner[case] = split
        return {split: tuple(ids) for split, ids in self.splits.items()}

    def _checked_labels(self) -> dict[str, int]:
        _require_mapping(self.labels, "labels")
        names: dict[int, str] = {}
        for name, value in self.labels.items():
            _require_str(name, f"labels key {name!r}", empty=False)
            _require_int(value, f"labels.{name}")
            if value in names:
                raise ValueError(
                    f"labels: value {value} is used by both {names[value]!r} and {name!r}"
                )
            names[value] = name
        return dict(self.labels)

    def _checked_files(self) -> tuple[FileEntry, ...] | None:
        if self.files is None:
            return None
        _require_sequence(self.files, "files")
        _require_items(self.files, FileEntry, "files")
        seen: set[str] = set()
        for entry in self.files:
            if entry.path in seen:
                raise ValueError(f"files: path {entry.path!r} is listed twice")
            seen.add(entry.path)
        return tuple(self.files)

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
        _check_keys(cls, data, "", source)
        values = dict(cast(Mapping[str, Any], data))
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
            data["splits"] = {split: _FlowList(ids) for split, ids in self.splits.items()}
        if self.layout:
            data["layout"] = [_layout_dict(entry) for entry in self.layout]
        if self.files is not None:
            data["files"] = [
                _FlowMapping(path=f.path, sha256=f.sha256, size=f.size) for f in self.files
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


def _check_keys(cls: type, data: object, prefix: str, source: str | PathLike[str]) -> None:
    where = prefix or "the top level"
    if not isinstance(data, Mapping):
        raise ManifestError(source, f"{where} must be a mapping, got {_describe(data)}")
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


def _construct(cls: type[_T], values: dict[str, Any], prefix: str, source: Any) -> _T:
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ManifestError(source, f"{prefix}.{err}" if prefix else str(err)) from None


def _build_list(cls: type[_T], items: object, key: str, source: str | PathLike[str]) -> list[_T]:
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise ManifestError(source, f"{key} must be a list, got {_describe(items)}")
    built = []
    for index, item in enumerate(items):
        prefix = f"{key}[{index}]"
        _check_keys(cls, item, prefix, source)
        built.append(_construct(cls, dict(item), prefix, source))
    return built


# --- YAML -----------------------------------------------------------------------------------


class _FlowList(list):  # type: ignore[type-arg]
    """A list written on one line."""


class _FlowMapping(dict):  # type: ignore[type-arg]
    """A mapping written on one line."""


class _Dumper(yaml.SafeDumper):
    """Safe dumper that indents lists under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        """Indent block sequences under their parent key."""
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(
    _FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
)
_Dumper.add_representer(
    _FlowMapping, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True)
)


def load_manifest(path: str | PathLike[str]) -> Manifest:
    r"""Read and validate a manifest YAML file.

    Args:
        path: The manifest file.

    Returns:
        The validated manifest.

    Raises:
        ManifestError: When the file cannot be read, is not YAML or is not a valid manifest.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "spleen.yaml"
        >>> _ = path.write_text("manifest_version: 1\nname: spleen\nlabels: {spleen: 1}\n")
        >>> load_manifest(path).labels["spleen"]
        1
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(path, f"cannot read manifest: {err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ManifestError(path, f"not valid YAML: {err}") from None
    return Manifest.from_dict(data, source=path)


def save_manifest(
    manifest: Manifest, path: str | PathLike[str], *, header: str | None = None
) -> None:
    """Write a manifest as YAML atomically (temporary file, then ``os.replace``).

    Args:
        manifest: The manifest to write.
        path: The destination file; its folder must exist.
        header: Text written first as ``#`` comment lines, e.g. where to download the data.

    Raises:
        InputError: When the destination folder does not exist or cannot be written.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "demo.yaml"
        >>> save_manifest(Manifest("demo"), out, header="A demo.")
        >>> out.read_text().splitlines()[0]
        '# A demo.'
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(path.parent, "folder for the manifest does not exist")
    body = yaml.dump(
        manifest.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10**6
    )
    comment = "".join(f"# {line}".rstrip() + "\n" for line in (header or "").splitlines())
    _write_atomic(path, comment + body)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_header(path: str | PathLike[str]) -> str:
    """Return the leading ``#`` comment lines of a YAML file, without the ``#``.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "demo.yaml"
        >>> save_manifest(Manifest("demo"), out, header="A demo.")
        >>> read_header(out)
        'A demo.'
    """
    lines = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[2:] if line.startswith("# ") else line[1:])
    return "\n".join(lines)


# --- files ------------------------------------------------------------------------------------


def match_pattern(path: str, pattern: str) -> bool:
    """Whether a relative POSIX path matches a layout glob.

    ``*``, ``?`` and ``[...]`` match inside one path segment; a ``**`` segment matches zero
    or more folders.

    Example:
        >>> match_pattern("L067/full_3mm/a.IMA", "*/full_3mm/*.IMA")
        True
        >>> match_pattern("L067/full_3mm/a.IMA", "**/*.IMA")
        True
    """
    return _match_parts(tuple(path.split("/")), tuple(pattern.split("/")))


def _match_parts(parts: tuple[str, ...], pats: tuple[str, ...]) -> bool:
    if not pats:
        return not parts
    if pats[0] == "**":
        return _match_parts(parts, pats[1:]) or (bool(parts) and _match_parts(parts[1:], pats))
    return bool(parts) and fnmatchcase(parts[0], pats[0]) and _match_parts(parts[1:], pats[1:])


def _check_root(root: str | PathLike[str]) -> Path:
    root = Path(root)
    if not root.exists():
        raise InputError(root, "dataset root folder does not exist")
    if not root.is_dir():
        raise InputError(root, "dataset root is not a folder")
    return root


def list_files(root: str | PathLike[str]) -> list[str]:
    """Return the sorted relative POSIX paths of all non-hidden files under a folder.

    Args:
        root: The dataset root.

    Raises:
        InputError: When the root does not exist or is not a folder.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / ".DS_Store").write_text("")
        >>> (root / "sub").mkdir(); _ = (root / "sub" / "a.txt").write_text("")
        >>> list_files(root)
        ['sub/a.txt']
    """
    root = _check_root(root)
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        relative = Path(folder).relative_to(root)
        for name in names:
            if not name.startswith(".") and Path(folder, name).is_file():
                found.append((relative / name).as_posix())
    return sorted(found)


def sha256_file(path: str | PathLike[str], chunk_size: int = CHUNK_SIZE) -> str:
    """Return the hex sha256 of a file, read in chunks.

    Raises:
        InputError: When the file cannot be read.

    Example:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "a.txt"
        >>> _ = f.write_bytes(b"")
        >>> sha256_file(f)[:16]
        'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(chunk_size):
                digest.update(chunk)
    except OSError as err:
        raise InputError(path, f"cannot read file: {err.strerror or err}") from None
    return digest.hexdigest()


def _each(paths: Sequence[str], progress: Progress | None) -> Iterable[str]:
    return progress(paths) if progress is not None else paths


def hash_files(
    root: str | PathLike[str],
    patterns: Sequence[str] = ("**/*",),
    *,
    progress: Progress | None = None,
) -> tuple[FileEntry, ...]:
    """Hash every file under a root that matches any of the patterns.

    Args:
        root: The dataset root.
        patterns: Layout globs relative to the root.
        progress: Optional wrapper around the paths being hashed (e.g. tqdm).

    Returns:
        File entries sorted by path.

    Raises:
        InputError: When the root is missing or no file matches.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / "a.txt").write_text("hello")
        >>> hash_files(root)[0].sha256[:8]
        '2cf24dba'
    """
    for pattern in patterns:
        LayoutEntry(pattern)  # validates the pattern
    root = _check_root(root)
    paths = [p for p in list_files(root) if any(match_pattern(p, pat) for pat in patterns)]
    if not paths:
        raise InputError(root, f"no file matches the patterns {list(patterns)}")
    entries = []
    for path in _each(paths, progress):
        full = root / path
        entries.append(FileEntry(path, sha256_file(full), full.stat().st_size))
    return tuple(entries)


def create_manifest(
    root: str | PathLike[str],
    *,
    name: str,
    patterns: Sequence[str] = ("**/*",),
    description: str = "",
    source: str = "",
    licence: str = "",
    version: str = "",
    layout: Sequence[LayoutEntry] = (),
    splits: Mapping[str, Sequence[str]] | None = None,
    labels: Mapping[str, int] | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Describe a local dataset, hashing every file that matches the patterns.

    Args:
        root: The dataset root; file paths are recorded relative to it.
        name: Dataset name.
        patterns: Globs selecting the files to record (default: every non-hidden file).
        description: What the data is.
        source: Where it comes from.
        licence: Its licence.
        version: Its release.
        layout: Expected globs and counts.
        splits: Split name -> case ids.
        labels: Label name -> value.
        progress: Optional wrapper around the paths being hashed (e.g. tqdm).

    Returns:
        The manifest, with files sorted by path.

    Raises:
        InputError: When the root is missing or no file matches.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / "a.txt").write_text("hello")
        >>> create_manifest(root, name="demo").files[0].path
        'a.txt'
    """
    return Manifest(
        name=name,
        description=description,
        source=source,
        licence=licence,
        version=version,
        layout=layout,
        splits=splits or {},
        labels=labels or {},
        files=hash_files(root, patterns, progress=progress),
    )


# --- verification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FileChange:
    """A file whose size or sha256 differs from the manifest.

    Example:
        >>> str(FileChange("a.txt", "size", 5, 6))
        'a.txt: size expected 5, found 6'
    """

    path: str
    what: str
    expected: str | int
    actual: str | int

    def __str__(self) -> str:
        return f"{self.path}: {self.what} expected {self.expected}, found {self.actual}"


@dataclass(frozen=True)
class LayoutResult:
    """How many files a layout pattern matched, against the expected count.

    Example:
        >>> LayoutResult("*.IMA", expected=2, found=1).ok
        False
    """

    pattern: str
    expected: int | None
    found: int

    @property
    def ok(self) -> bool:
        """True when no count is expected or the count matches."""
        return self.expected is None or self.found == self.expected


@dataclass
class VerifyReport:
    """What differs between a manifest and a local copy of the data.

    Attributes:
        manifest: The manifest's name.
        root: The dataset root checked.
        checked: Number of file entries checked.
        hashes_checked: False when only sizes were compared.
        missing: Listed files that are not there.
        changed: Listed files whose size or sha256 differs.
        unexpected: Files that the manifest does not list (only when it lists files).
        layout: One result per layout pattern.

    Example:
        >>> report = VerifyReport("demo", Path("/data"), missing=["a.txt"])
        >>> report.ok
        False
    """

    manifest: str
    root: Path
    checked: int = 0
    hashes_checked: bool = True
    missing: list[str] = field(default_factory=list)
    changed: list[FileChange] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    layout: list[LayoutResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is missing, changed or unexpected and every count matches."""
        problems = self.missing or self.changed or self.unexpected
        return not problems and all(result.ok for result in self.layout)

    def summary(self) -> str:
        """Return a one-line summary.

        Example:
            >>> VerifyReport("demo", Path("/data")).summary()
            "manifest 'demo' vs /data: OK (0 files checked with sha256)"
        """
        how = "sha256" if self.hashes_checked else "sizes only"
        counts = [
            f"{len(self.missing)} missing",
            f"{len(self.changed)} changed",
            f"{len(self.unexpected)} unexpected",
            f"{sum(not r.ok for r in self.layout)} layout count(s) off",
        ]
        state = "OK" if self.ok else "PROBLEMS: " + ", ".join(counts)
        return (
            f"manifest {self.manifest!r} vs {self.root}: {state} "
            f"({self.checked} files checked with {how})"
        )

    def format(self, max_items: int = 20) -> str:
        """Return a readable multi-line report, listing at most ``max_items`` per kind.

        Example:
            >>> print(VerifyReport("demo", Path("/data"), missing=["a.txt"]).format())
            manifest 'demo' vs /data: PROBLEMS: 1 missing, 0 changed, 0 unexpected, 0 layout count(s) off (0 files checked with sha256)
            missing (1):
              a.txt
        """  # noqa: E501
        lines = [self.summary()]
        if self.layout:
            lines.append("layout:")
            for result in self.layout:
                expected = "any" if result.expected is None else result.expected
                state = "ok  " if result.ok else "FAIL"
                lines.append(
                    f"  {state} {result.pattern}: expected {expected}, found {result.found}"
                )
        for title, items in (
            ("missing", self.missing),
            ("changed", self.changed),
            ("unexpected", self.unexpected),
        ):
            lines.extend(_list_block(title, [str(item) for item in items], max_items))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data.

        Example:
            >>> VerifyReport("demo", Path("/data")).to_dict()["ok"]
            True
        """
        return {
            "manifest": self.manifest,
            "root": str(self.root),
            "ok": self.ok,
            "checked": self.checked,
            "hashes_checked": self.hashes_checked,
            "missing": list(self.missing),
            "changed": [vars(change) for change in self.changed],
            "unexpected": list(self.unexpected),
            "layout": [{**vars(r), "ok": r.ok} for r in self.layout],
        }

    def raise_if_problems(self) -> None:
        """Raise when the data does not match, e.g. before a loader uses it.

        Raises:
            InputError: Naming the root and listing the problems.

        Example:
            >>> VerifyReport("demo", Path("/data")).raise_if_problems()
        """
        if not self.ok:
            raise InputError(self.root, "does not match its manifest:\n" + self.format(5))


def _list_block(title: str, items: list[str], max_items: int) -> list[str]:
    if not items:
        return []
    lines = [f"{title} ({len(items)}):"]
    lines.extend(f"  {item}" for item in items[:max_items])
    if len(items) > max_items:
        lines.append(f"  ... and {len(items) - max_items} more")
    return lines


def _check_entry(entry: FileEntry, root: Path, check_hash: bool) -> FileChange | None:
    full = root / entry.path
    size = full.stat().st_size
    if size != entry.size:
        return FileChange(entry.path, "size", entry.size, size)
    if check_hash:
        digest = sha256_file(full)
        if digest != entry.sha256:
            return FileChange(entry.path, "sha256", entry.sha256, digest)
    return None


def _check_entries(
    report: VerifyReport,
    entries: Sequence[FileEntry],
    progress: Progress | None,
) -> None:
    by_path = {entry.path: entry for entry in entries}
    for path in _each(list(by_path), progress):
        entry = by_path[path]
        if not (report.root / path).is_file():
            report.missing.append(path)
            continue
        change = _check_entry(entry, report.root, report.hashes_checked)
        if change is not None:
            report.changed.append(change)
    report.checked = len(entries)


def verify_manifest(
    manifest: Manifest,
    root: str | PathLike[str],
    *,
    check_hashes: bool = True,
    progress: Progress | None = None,
) -> VerifyReport:
    """Compare a local copy of a dataset with its manifest.

    Counts every layout pattern; when the manifest lists files, reports the missing ones,
    those whose size (and, with ``check_hashes``, sha256) differs, and unlisted files.

    Args:
        manifest: The manifest.
        root: The dataset root.
        check_hashes: Compare sha256 too, not only sizes.
        progress: Optional wrapper around the paths being checked (e.g. tqdm).

    Returns:
        The report; ``report.ok`` says whether everything matched.

    Raises:
        InputError: When the root does not exist or is not a folder.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / "a.txt").write_text("hello")
        >>> manifest = create_manifest(root, name="demo")
        >>> _ = (root / "a.txt").write_text("world")
        >>> verify_manifest(manifest, root).changed[0].what
        'sha256'
    """
    root = _check_root(root)
    on_disk = list_files(root)
    report = VerifyReport(manifest.name, root, hashes_checked=check_hashes)
    for entry in manifest.layout:
        found = sum(match_pattern(path, entry.pattern) for path in on_disk)
        report.layout.append(LayoutResult(entry.pattern, entry.expected_count, found))
    if manifest.files is not None:
        _check_entries(report, manifest.files, progress)
        listed = {entry.path for entry in manifest.files}
        report.unexpected.extend(path for path in on_disk if path not in listed)
    return report


def _relative_to_root(path: str | PathLike[str], root: Path) -> str:
    candidate = Path(path)
    if not candidate.is_absolute():
        return candidate.as_posix()
    try:
        return candidate.relative_to(root).as_posix()
    except ValueError:
        try:
            return candidate.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            raise InputError(candidate, f"is not inside the dataset root {root}") from None


def verify_files(
    manifest: Manifest,
    root: str | PathLike[str],
    paths: Iterable[str | PathLike[str]],
    *,
    check_hashes: bool = True,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check only some files of a dataset against its manifest, e.g. those a loader reads.

    Files that the manifest does not list are reported as unexpected; layout counts are
    not checked.

    Args:
        manifest: A manifest that lists files.
        root: The dataset root.
        paths: Files to check, relative to the root or absolute paths inside it.
        check_hashes: Compare sha256 too, not only sizes.
        progress: Optional wrapper around the paths being checked (e.g. tqdm).

    Returns:
        The report; call ``raise_if_problems()`` to stop on any difference.

    Raises:
        ManifestError: When the manifest lists no files.
        InputError: When the root is missing or a path lies outside it.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / "a.txt").write_text("hello")
        >>> manifest = create_manifest(root, name="demo")
        >>> verify_files(manifest, root, [root / "a.txt"]).ok
        True
    """
    root = _check_root(root)
    if manifest.files is None:
        raise ManifestError(
            f"manifest {manifest.name!r}", "lists no files, so files cannot be checked against it"
        )
    by_path = {entry.path: entry for entry in manifest.files}
    report = VerifyReport(manifest.name, root, hashes_checked=check_hashes)
    wanted = dict.fromkeys(_relative_to_root(path, root) for path in paths)
    report.unexpected.extend(path for path in wanted if path not in by_path)
    _check_entries(report, [by_path[path] for path in wanted if path in by_path], progress)
    return report
