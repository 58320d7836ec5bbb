"""Where ctpipe may write: never over its input, never over what it did not write.

Every command that writes a folder of results (``run``, ``batch``, ``demo``) or a result
file (``segment``, ``simulate``, ``inpaint``, ``anomaly``) checks its output here before
it reads or computes anything:

* the output may not be, contain, or lie inside an input;
* an existing file is never replaced by a folder;
* an existing folder is used only when it is empty or was written by ctpipe (recognised
  by the caller's ``owned`` test, e.g. a study folder's run record), unless the user
  passed ``--overwrite``;
* the current folder, a folder holding it and a mount point are refused, since a study
  folder is replaced by renaming;
* the nearest existing parent must be writable.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "scan").mkdir()
    >>> check_output_folder(root / "scan" / "out", inputs=[root / "scan"])
    Traceback (most recent call last):
    ...
    ctpipe.errors.OutputError: .../scan/out: is inside the input .../scan; ...
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from ctpipe.errors import OutputError

__all__ = ["check_output_file", "check_output_folder", "is_non_empty", "overlap_problem"]

PathLike = str | os.PathLike[str]


def _real(path: PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


def _is_within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def overlap_problem(output: PathLike, source: PathLike, what: str = "the input") -> str | None:
    """Say how ``output`` overlaps ``source`` (same, inside, holding it), or None.

    Example:
        >>> overlap_problem("/data/ct/out", "/data/ct")
        'is inside the input /data/ct'
        >>> overlap_problem("/data", "/data/ct/IM1.dcm")
        'contains the input /data/ct/IM1.dcm'
        >>> overlap_problem("/out", "/data") is None
        True
    """
    out, src = _real(output), _real(source)
    if out == src:
        return f"is {what} {source}"
    if _is_within(out, src):
        return f"is inside {what} {source}"
    if _is_within(src, out):
        return f"contains {what} {source}"
    return None


def check_output_folder(
    output: PathLike,
    *,
    inputs: Iterable[PathLike] = (),
    overwrite: bool = False,
    foreign: Callable[[Path], str | None] | None = None,
    replaced: bool = True,
) -> Path:
    """Check that a results folder may be (re)placed at ``output``; return it, absolute.

    Args:
        output: The folder to write.
        inputs: Files and folders that must stay untouched (the input, the workflow file).
        overwrite: Allow a non-empty folder that ``foreign`` does not recognise.
        foreign: Says why a non-empty folder is not one ctpipe wrote earlier (None when
            it is, so it may be replaced); without it every non-empty folder is refused.
        replaced: The folder will be replaced as a whole by a rename (a study folder):
            the current folder, one holding it and mount points are refused then.

    Returns:
        The absolute output path.

    Raises:
        OutputError: The output is refused (the message names it and says why).
    """
    out = _absolute_apart(output, inputs, "results")
    if out.is_symlink():
        raise OutputError(out, "is a symbolic link; give the folder it points to, or a new one")
    if out.exists() and not out.is_dir():
        raise OutputError(
            out, "exists and is not a folder; ctpipe will not replace it (choose another path)"
        )
    cwd = _real(Path.cwd())
    if replaced and _is_within(cwd, _real(out)):
        raise OutputError(
            out,
            "is the current folder or holds it; give a new folder for the results (e.g. ./results)",
        )
    if out.is_dir():
        if replaced and os.path.ismount(out):
            raise OutputError(out, "is a mount point; give a new folder inside it")
        if is_non_empty(out) and not overwrite:
            reason = "is a non-empty folder" if foreign is None else foreign(out)
            if reason:
                raise OutputError(
                    out,
                    f"{reason}; choose an empty or new folder, or pass --overwrite to "
                    "replace what it holds",
                )
    _check_writable_parent(out)
    return out


def check_output_file(output: PathLike, *, inputs: Iterable[PathLike] = ()) -> Path:
    """Check that a result file may be written at ``output``; return it, absolute.

    The file itself is written atomically later (a temporary name, then a rename), so an
    existing file of the same name is replaced only when the new one is complete.

    Raises:
        OutputError: The path is an input, holds one, is a folder, or cannot be written.

    Example:
        >>> check_output_file("/proc/no/such/labels.nii.gz")
        Traceback (most recent call last):
        ...
        ctpipe.errors.OutputError: /proc/no/such: is not writable (in /proc): ...
    """
    out = _absolute_apart(output, inputs, "result")
    if out.is_dir():
        raise OutputError(out, "is a folder; give a file name")
    _check_writable_parent(out)
    return out


def _absolute_apart(output: PathLike, inputs: Iterable[PathLike], written: str) -> Path:
    """``output`` made absolute, refused when it is, holds or lies in one of ``inputs``.

    Args:
        output: The path to write.
        inputs: Files and folders that must stay untouched.
        written: What is written there, for the message (``results``, ``result``).
    """
    out = Path(os.path.abspath(output))
    for source in inputs:
        problem = overlap_problem(out, source)
        if problem:
            raise OutputError(out, f"{problem}; write the {written} somewhere else")
    return out


def is_non_empty(folder: Path) -> bool:
    """True when ``folder`` holds anything (hidden entries included)."""
    with os.scandir(folder) as entries:
        return any(True for _ in entries)


def _check_writable_parent(out: Path) -> None:
    """The nearest existing folder above ``out`` accepts a new entry (probed, then removed)."""
    existing = out.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(out.parent, f"cannot be created: {existing} is not a folder")
    try:
        probe = tempfile.mkdtemp(prefix=".ctpipe-probe-", dir=existing)
    except OSError as err:
        where = "" if existing == out.parent else f" (in {existing})"
        raise OutputError(out.parent, f"is not writable{where}: {err.strerror}") from None
    os.rmdir(probe)
