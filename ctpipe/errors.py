"""Exceptions raised by ctpipe.

Every error that comes from user input names the file or folder and the problem, so a
batch log line is enough to find and fix the input.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

#: Exit statuses of every ctpipe command: all done; ran but found problems (a failed
#: study, a manifest mismatch); unusable input (one line naming the file and the problem).
EXIT_OK, EXIT_PROBLEMS, EXIT_ERROR = 0, 1, 2


class CTPipeError(Exception):
    """Base class of every error ctpipe raises on purpose."""


class InputError(CTPipeError):
    """A file or folder given to ctpipe cannot be used.

    Args:
        path: The offending file or folder.
        problem: What is wrong with it, in words a user can act on.

    Example:
        >>> str(InputError("/data/a.dcm", "file is truncated"))
        '/data/a.dcm: file is truncated'
    """

    def __init__(self, path: str | PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class NotDicomError(InputError):
    """The file is not a DICOM file (no preamble, no meta header, unparsable)."""


class CorruptDicomError(InputError):
    """The file is DICOM but truncated or damaged, so its pixels cannot be read."""


class NoSeriesFoundError(InputError):
    """A folder holds no DICOM image series."""


class AmbiguousSeriesError(InputError):
    """A folder holds several series and the caller did not say which one to read."""


class UnsupportedModalityError(InputError):
    """The series is not of an allowed modality (CT unless told otherwise)."""


class SeriesGeometryError(InputError):
    """The slices of a series do not form a regular grid.

    Raised for missing slices, uneven spacing, duplicate positions, tilted gantry or
    non-orthogonal orientation, and mixed slice sizes or orientations.
    """


class ManifestError(InputError):
    """A data manifest is malformed."""


class OutputError(InputError):
    """An output path cannot be used (names the path and why).

    It is, holds or lies inside an input; it holds files ctpipe did not write; or it
    cannot be written.
    """
