"""How large a volume ctpipe agrees to read: checked on the declared size, before allocating.

A file's header says how many voxels it holds (DICOM ``Rows`` x ``Columns`` x frames x
files, a NIfTI ``dim``, a NRRD ``sizes``). A damaged or hostile header can declare far
more than the file holds (an RLE image of 65535 x 65535 pixels, a 1 MB gzip that
inflates to gigabytes), and decoding it would exhaust memory. Every reader compares the
declared voxel count with :func:`max_voxels` first and refuses, naming the file, before
it allocates anything.

The default, 2**30 voxels (4 GiB as float32), is four times a 512 x 512 x 1000 series.
Raise it with ``--max-voxels N`` (any command), the ``CTPIPE_MAX_VOXELS`` environment
variable (Dask workers read it too) or :func:`voxel_limit` in code.

Example:
    >>> voxel_problem((512, 512, 300)) is None
    True
    >>> with voxel_limit(1000):
    ...     voxel_problem((20, 20, 10)).split(",")[0]
    'declares 20 x 20 x 10 = 4000 voxels (0.0 GiB as float32)'
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence

from ctpipe.errors import CTPipeError

__all__ = ["DEFAULT_MAX_VOXELS", "ENV_MAX_VOXELS", "max_voxels", "voxel_limit", "voxel_problem"]

#: Largest volume read by default: 2**30 voxels, 4 GiB as float32.
DEFAULT_MAX_VOXELS = 2**30
#: Environment variable that sets the limit (a positive integer).
ENV_MAX_VOXELS = "CTPIPE_MAX_VOXELS"

_override: list[int] = []


def max_voxels() -> int:
    """The voxel limit in force: :func:`voxel_limit`, else the environment, else the default.

    Raises:
        CTPipeError: ``CTPIPE_MAX_VOXELS`` is not a positive integer.
    """
    if _override:
        return _override[-1]
    text = os.environ.get(ENV_MAX_VOXELS, "").strip()
    if not text:
        return DEFAULT_MAX_VOXELS
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value < 1:
        raise CTPipeError(f"{ENV_MAX_VOXELS} must be a positive integer, got {text!r}")
    return value


@contextlib.contextmanager
def voxel_limit(limit: int | None) -> Iterator[None]:
    """Use ``limit`` as the voxel limit inside the block (``None``: leave it as it is).

    Raises:
        ValueError: ``limit`` is not positive.
    """
    if limit is None:
        yield
        return
    if limit < 1:
        raise ValueError(f"the voxel limit must be a positive integer, got {limit}")
    _override.append(int(limit))
    try:
        yield
    finally:
        _override.pop()


def voxel_problem(shape: Sequence[int], *, what: str = "declares") -> str | None:
    """Say why a declared shape is too large (or invalid) to read, or None when it is fine.

    Example:
        >>> voxel_problem((512, 0, 3))
        'declares an empty volume: 512 x 0 x 3'
    """
    dims = [int(v) for v in shape]
    text = " x ".join(str(v) for v in dims)
    if any(v < 0 for v in dims):
        return f"{what} a negative size: {text}"
    if not dims or any(v == 0 for v in dims):
        return f"{what} an empty volume: {text}"
    count = math.prod(dims)
    limit = max_voxels()
    if count > limit:
        gib = count * 4 / 2**30
        return (
            f"{what} {text} = {count} voxels ({gib:.1f} GiB as float32), above the limit of "
            f"{limit} voxels (--max-voxels or {ENV_MAX_VOXELS})"
        )
    return None
