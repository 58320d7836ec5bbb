"""The files of a local dataset: listing, layout-glob matching and sha256 hashing.

Paths are relative POSIX paths under the dataset root. Layout patterns are globs matched
one path segment at a time: ``*``, ``?`` and ``[...]`` stay inside one segment, and a
``**`` segment matches zero or more folders. Hidden files and folders (names starting with
``.``, such as ``.DS_Store`` or the ``._*`` files of macOS archives) are never listed,
counted or hashed.

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "a.txt").write_text("hello")
    >>> [(f.path, f.size) for f in create_manifest(root, name="demo").files]
    [('a.txt', 5)]
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from os import PathLike
from pathlib import Path

from ctpipe.errors import InputError
from ctpipe.io.manifest._checks import require_root
from ctpipe.io.manifest.model import FileEntry, LayoutEntry, Manifest

__all__ = [
    "CHUNK_SIZE",
    "Progress",
    "create_manifest",
    "hash_files",
    "list_files",
    "match_pattern",
    "sha256_file",
]

CHUNK_SIZE = 1 << 20
"""Bytes read at a time while hashing (1 MiB)."""

Progress = Callable[[Sequence[str]], Iterable[str]]
"""Wraps the list of relative paths about to be hashed, e.g. ``lambda p: tqdm(p)``."""


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
    root = require_root(root)
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
    paths = [p for p in list_files(root) if any(match_pattern(p, pat) for pat in patterns)]
    if not paths:
        raise InputError(root, f"no file matches the patterns {list(patterns)}")
    root = Path(root)
    return tuple(
        FileEntry(path, sha256_file(root / path), (root / path).stat().st_size)
        for path in (progress(paths) if progress is not None else paths)
    )


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
