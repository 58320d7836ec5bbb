"""Write files so that a reader never sees half of one.

Every output ctpipe writes goes to a temporary name in the destination folder first and is
renamed into place only when complete (``os.replace`` is atomic on POSIX and Windows).
An interrupted run leaves at most a ``.tmp-*`` file, never a truncated output.

Example:
    >>> from pathlib import Path
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    The temporary name keeps the target's suffixes (``.nii.gz``, ``.png``), so writers
    that pick a format from the extension work. On an exception the temporary file is
    removed and ``target`` is left as it was.

    Args:
        target: The final path. Its folder is created when missing.

    Yields:
        The temporary path to write to.

    Raises:
        OSError: Writing failed (a full disk, ...); its ``filename`` is ``target``.
    """
    target = Path(target)
    suffix = "".join(target.suffixes)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix, dir=target.parent)
    except OSError as err:
        raise OSError(err.errno, err.strerror or str(err), str(target)) from err
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get normal modes
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as err:  # a full disk, a lost mount: name the output, not the temp file
        tmp.unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror or str(err), str(target)) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
