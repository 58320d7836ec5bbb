"""Data manifests: what a dataset should hold, and a check that a local copy does.

A manifest is a YAML file describing a dataset that users download themselves: where it
comes from, its licence, the expected folder layout and file counts, the case splits, the
label values and, for data held locally, the size and sha256 of every file. Loading a
manifest validates it: unknown keys are refused with their key path and the allowed keys,
and values of the wrong type are named.

Modules:
    model: :class:`Manifest`, :class:`LayoutEntry`, :class:`FileEntry`, valid once built.
    files: listing, layout-glob matching and hashing of a local copy; :func:`create_manifest`.
    yaml_io: :func:`load_manifest`, :func:`save_manifest` (atomic), :func:`read_header`.
    verify: :func:`verify_manifest`, :func:`verify_files` and their :class:`VerifyReport`.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "a.txt").write_text("hello")
    >>> manifest = create_manifest(root, name="demo")
    >>> [(f.path, f.size) for f in manifest.files]
    [('a.txt', 5)]
    >>> verify_manifest(manifest, root).ok
    True
"""

from __future__ import annotations

from ctpipe.io.manifest.files import (
    CHUNK_SIZE,
    Progress,
    create_manifest,
    hash_files,
    list_files,
    match_pattern,
    sha256_file,
)
from ctpipe.io.manifest.model import MANIFEST_VERSION, FileEntry, LayoutEntry, Manifest
from ctpipe.io.manifest.verify import (
    FileChange,
    LayoutResult,
    VerifyReport,
    verify_files,
    verify_manifest,
)
from ctpipe.io.manifest.yaml_io import load_manifest, read_header, save_manifest

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
