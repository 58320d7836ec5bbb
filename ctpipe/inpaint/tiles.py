"""Where the generator works on a full slice: one tile per hole, at the generator's size.

The generator makes ``P x P`` patches (64 x 64 for the shipped model), far smaller than a
512 x 512 slice. :func:`plan_tiles` gives each connected part of the mask's footprint
(the union of its slices, 8-connected) one square tile that holds the part plus
``margin`` pixels of context on every side:

* a part that fits in ``P - 2 margin`` pixels gets a ``P x P`` tile at full resolution;
* a larger part gets a ``sP x sP`` tile with the smallest integer ``s`` that fits, worked
  on at ``1/s`` resolution: :func:`downsample` averages ``s x s`` blocks (a block is
  known only when all its pixels are) and :func:`upsample` interpolates the fill back
  (bilinear, pixel centres aligned with the blocks).

A tile is centred on its part and moved inside the slice when it would cross the edge.
Tiles are the same on every slice, so a tile's frames along ``k`` form a sequence.

Example:
    >>> import numpy as np
    >>> footprint = np.zeros((128, 128), bool)
    >>> footprint[10:20, 30:40] = True
    >>> footprint[60:120, 60:100] = True
    >>> [(t.i0, t.j0, t.size, t.scale) for t in plan_tiles(footprint, patch=64, margin=8)]
    [(0, 3, 64, 1), (0, 0, 128, 2)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Tile", "downsample", "plan_tiles", "upsample"]


@dataclass(frozen=True)
class Tile:
    """A square window of the slice holding one part of the mask.

    Args:
        i0: First column index (i) of the window.
        j0: First row index (j) of the window.
        size: Side in slice pixels (``scale * patch``).
        scale: Slice pixels per generator pixel.
        part: Label of the footprint part it holds (1-based).
    """

    i0: int
    j0: int
    size: int
    scale: int
    part: int

    @property
    def window(self) -> tuple[slice, slice]:
        """The ``(i, j)`` slices of the window."""
        return slice(self.i0, self.i0 + self.size), slice(self.j0, self.j0 + self.size)


def plan_tiles(footprint: np.ndarray, *, patch: int, margin: int) -> list[Tile]:
    """One tile per 8-connected part of ``footprint``, in order of the parts' labels.

    Args:
        footprint: Bool ``(i, j)``: pixels in the hole on any slice.
        patch: The generator's image side ``P``.
        margin: Context pixels wanted on each side of a part.

    Returns:
        The tiles, each with the part's label.

    Raises:
        ValueError: A part needs a tile larger than the slice, or the slice is smaller than
            one patch.
    """
    from scipy.ndimage import find_objects, label

    if margin < 0 or 2 * margin >= patch:
        raise ValueError(f"margin must be in [0, patch / 2) = [0, {patch / 2:g}), got {margin!r}")
    shape = footprint.shape
    if min(shape) < patch:
        raise ValueError(
            f"slices of {shape[0]} x {shape[1]} pixels are smaller than the generator's "
            f"{patch} x {patch}"
        )
    parts, _ = label(footprint, structure=np.ones((3, 3), bool))
    tiles = []
    for number, box in enumerate(find_objects(parts), start=1):
        if box is None:
            continue
        extent = max(box[0].stop - box[0].start, box[1].stop - box[1].start) + 2 * margin
        scale = max(1, math.ceil(extent / patch))
        size = scale * patch
        if size > min(shape):
            raise ValueError(
                f"a hole of {box[0].stop - box[0].start} x {box[1].stop - box[1].start} pixels "
                f"(at i={box[0].start}, j={box[1].start}) needs a {size}-pixel tile, larger "
                f"than the {shape[0]} x {shape[1]} slice"
            )
        starts = []
        for axis in (0, 1):
            centre = (box[axis].start + box[axis].stop) / 2
            starts.append(int(np.clip(round(centre - size / 2), 0, shape[axis] - size)))
        tiles.append(Tile(starts[0], starts[1], size, scale, number))
    return tiles


def downsample(image: np.ndarray, known: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Average ``scale x scale`` blocks; a block is known only if all its pixels are.

    Args:
        image: ``(..., H, W)`` with ``H`` and ``W`` multiples of ``scale``.
        known: Bool, same shape.
        scale: Block side.

    Returns:
        ``(image, known)`` at ``1/scale`` resolution.

    Example:
        >>> img, ok = downsample(np.arange(16.0).reshape(4, 4), np.ones((4, 4), bool), 2)
        >>> img.tolist(), bool(ok.all())
        ([[2.5, 4.5], [10.5, 12.5]], True)
    """
    if scale == 1:
        return image, known
    *lead, h, w = image.shape
    shape = (*lead, h // scale, scale, w // scale, scale)
    return image.reshape(shape).mean(axis=(-3, -1)), known.reshape(shape).all(axis=(-3, -1))


def upsample(image: np.ndarray, scale: int) -> np.ndarray:
    """Bilinear upsampling by ``scale`` of ``(..., h, w)``, centres aligned with blocks.

    Example:
        >>> upsample(np.ones((2, 2)), 2).shape
        (4, 4)
    """
    if scale == 1:
        return image
    import torch
    from torch.nn import functional as F

    tensor = torch.as_tensor(np.asarray(image, np.float32))
    lead = tensor.shape[:-2]
    flat = tensor.reshape(-1, 1, *tensor.shape[-2:])
    up = F.interpolate(flat, scale_factor=scale, mode="bilinear", align_corners=False)
    return up.reshape(*lead, *up.shape[-2:]).numpy()
