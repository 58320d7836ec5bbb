"""Check a local copy of a dataset against its manifest, in full or only some files.

:func:`verify_manifest` counts every layout pattern and, when the manifest lists files,
reports the missing, changed and unlisted ones; :func:`verify_files` checks only the files
a loader is about to read. Both return a :class:`VerifyReport`, which formats itself for
people, converts to JSON and can raise ``InputError`` listing what differs.

Example:
    >>> import tempfile
    >>> from ctpipe.io.manifest import create_manifest
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "a.txt").write_text("hello")
    >>> manifest = create_manifest(root, name="demo")
    >>> verify_manifest(manifest, root).ok
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from ctpipe.errors import InputError, ManifestError
from ctpipe.io.manifest._checks import require_root
from ctpipe.io.manifest.files import Progress, list_files, match_pattern, sha256_file
from ctpipe.io.manifest.model import FileEntry, Manifest

__all__ = ["FileChange", "LayoutResult", "VerifyReport", "verify_files", "verify_manifest"]


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
    paths = list(by_path)
    for path in progress(paths) if progress is not None else paths:
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
        >>> from ctpipe.io.manifest import create_manifest
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / "a.txt").write_text("hello")
        >>> manifest = create_manifest(root, name="demo")
        >>> _ = (root / "a.txt").write_text("world")
        >>> verify_manifest(manifest, root).changed[0].what
        'sha256'
    """
    root = require_root(root)
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
        >>> from ctpipe.io.manifest import create_manifest
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = (root / "a.txt").write_text("hello")
        >>> manifest = create_manifest(root, name="demo")
        >>> verify_files(manifest, root, [root / "a.txt"]).ok
        True
    """
    root = require_root(root)
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
