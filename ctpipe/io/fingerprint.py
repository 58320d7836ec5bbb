"""A fingerprint of an input's files, so a batch re-run notices any change to them.

:func:`input_fingerprint` hashes, for every file, its name, its size, its modification
time (ns) and the sha256 of its first and last 64 KiB: the DICOM header and the end of
the pixel data. A re-run of ``ctpipe batch`` skips a series only when the fingerprint in
its run record equals the fingerprint of the files found now, so a series whose pixels,
header, file count, sizes or times changed is processed again. A copy that keeps the
files' times (``cp -p``, ``rsync -a``) keeps the fingerprint; one that does not makes
every series run again.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "IM1.dcm"
    >>> _ = path.write_bytes(b"x" * 100)
    >>> first = input_fingerprint([path])
    >>> _ = path.write_bytes(b"y" * 100)
    >>> input_fingerprint([path]) == first
    False
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["SAMPLE_BYTES", "input_fingerprint"]

#: Bytes hashed at the start and at the end of every file.
SAMPLE_BYTES = 64 * 1024


def input_fingerprint(files: Iterable[str | os.PathLike[str]]) -> str:
    """sha256 over each file's name, size, mtime and the hash of its first and last bytes.

    The order of ``files`` does not matter. A file that cannot be read counts as its
    name and the error, so the fingerprint never matches a readable state.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(f) for f in files):
        digest.update(_file_line(path).encode())
    return digest.hexdigest()


def _file_line(path: Path) -> str:
    try:
        stat = path.stat()
        with open(path, "rb") as stream:
            head = stream.read(SAMPLE_BYTES)
            if stat.st_size > 2 * SAMPLE_BYTES:
                stream.seek(-SAMPLE_BYTES, os.SEEK_END)
            tail = stream.read(SAMPLE_BYTES)
    except OSError as err:
        return f"{path.name}\tunreadable {err.errno}\n"
    sample = hashlib.sha256(head + b"\0" + tail).hexdigest()
    return f"{path.name}\t{stat.st_size}\t{stat.st_mtime_ns}\t{sample}\n"
