"""Safe file names from DICOM UIDs, and durable writes of received instances.

File names are built only from UIDs, and only through :func:`safe_name`: a value made of
digits and dots (every conformant UID, and the common non-conformant ones with leading
zeros or more than 64 characters) is used as it is; anything else (``../../etc``, ``a/b``,
an empty value, control characters) becomes a hash of the value, so a tag value can never
name a file outside the folder it is written to.

:func:`write_durably` writes bytes to a temporary name, flushes them to the disk
(``fsync``), renames the file into place and flushes the folder, so once it returns the
file survives a crash of the process or the machine: the node acknowledges a C-STORE only
after this.

Example:
    >>> name = safe_name("../../etc/passwd")
    >>> name.startswith("x-"), "/" in name, len(name)
    (True, False, 42)
    >>> import tempfile
    >>> path = instance_path(Path(tempfile.mkdtemp()), "1.2.3", "1.2.3.4")
    >>> path.parts[-2:]
    ('1.2.3', '1.2.3.4.dcm')
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from ctpipe.io.atomic import atomic_path

__all__ = ["instance_path", "safe_name", "write_durably"]

_DIGITS_AND_DOTS = re.compile(r"[0-9]+(\.[0-9]+)*")
#: Longest UID used as a file name as it is (DICOM allows 64; some systems write longer).
MAX_PLAIN_LENGTH = 128


def safe_name(value: object) -> str:
    """A file or folder name for a UID: itself when digits and dots, else ``x-<sha1>``.

    Args:
        value: The UID (any value: it comes from a received dataset).

    Returns:
        A name that holds no path separator and is never ``.`` or ``..``.

    Example:
        >>> safe_name("1.3.6.1.4.1.5962.1.1.1")
        '1.3.6.1.4.1.5962.1.1.1'
        >>> safe_name("1.2/../3") == safe_name("1.2/../3") != "1.2/../3"
        True
    """
    text = "" if value is None else str(value)
    if len(text) <= MAX_PLAIN_LENGTH and _DIGITS_AND_DOTS.fullmatch(text):
        return text
    return "x-" + hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def instance_path(folder: Path, *uids: object) -> Path:
    """Where an instance is stored: ``folder/<uid>/.../<last uid>.dcm``, every name safe.

    Args:
        folder: The root folder.
        *uids: UIDs naming the sub-folders (e.g. study, series), then the SOP Instance UID.

    Returns:
        A path inside ``folder`` whatever the UIDs hold.

    Example:
        >>> instance_path(Path("/spool"), "1.2", "/etc/passwd").parent.as_posix()
        '/spool/1.2'
    """
    if not uids:
        raise ValueError("instance_path needs at least the SOP Instance UID, got none")
    *folders, sop = (safe_name(uid) for uid in uids)
    return folder.joinpath(*folders, f"{sop}.dcm")


def write_durably(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` so that it is complete on disk when this returns.

    The bytes go to a temporary file beside ``target`` (:func:`ctpipe.io.atomic.atomic_path`),
    are flushed with ``fsync``, the file is renamed onto ``target`` and the folder is
    flushed too. A reader never sees a partial file; an existing ``target`` is replaced.

    Args:
        target: The final path; its folder is created when missing.
        data: The file's bytes.

    Raises:
        OSError: When the disk refuses the write (full, read-only, ...).

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "a" / "b.dcm"
        >>> write_durably(target, b"DICM")
        >>> target.read_bytes()
        b'DICM'
    """
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_folder(target.parent)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - folders cannot be opened on Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)
