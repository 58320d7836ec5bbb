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
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(target.suffixes)
    fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get normal modes
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
