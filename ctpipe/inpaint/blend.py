r"""Blending the generated content into the image: plain and Poisson (Pérez et al. 2003).

Both keep every known pixel exactly and change only the hole ``Ω``:

* :func:`blend_plain`: ``M * y + (1 - M) * G(z)``, the output of Yeh et al.;
* :func:`blend_poisson`: the hole gets the ``x`` whose discrete Laplacian equals that of
  ``G(z)`` inside ``Ω`` and which equals ``y`` on the known pixels around it (Yeh et al.
  blend this way so that the fill takes the surrounding intensities while keeping the
  generated structure). For each hole pixel ``p`` with in-image 4-neighbours ``N_p``:

  .. math::

      |N_p| \, x_p - \sum_{q \in N_p \cap Ω} x_q
        = \sum_{q \in N_p \setminus Ω} y_q + \sum_{q \in N_p} (g_p - g_q),

  a sparse linear system solved directly (SciPy). Neighbours outside the image are left
  out (a Neumann boundary). Each connected part of the hole must touch a known pixel.

Example:
    >>> import numpy as np
    >>> image = np.arange(25.0).reshape(5, 5)
    >>> hole = np.zeros((5, 5), bool)
    >>> hole[1:4, 1:4] = True
    >>> out = blend_poisson(image, np.zeros((5, 5)), hole)  # flat guidance: harmonic fill
    >>> bool(np.array_equal(out[~hole], image[~hole])), float(round(out[2, 2], 6))
    (True, 12.0)
"""

from __future__ import annotations

import numpy as np

__all__ = ["BLENDS", "blend", "blend_plain", "blend_poisson"]

#: Blending methods :func:`blend` knows.
BLENDS = ("poisson", "plain")


def _check(image: np.ndarray, generated: np.ndarray, hole: np.ndarray) -> None:
    if image.shape != generated.shape or image.shape != hole.shape or image.ndim != 2:
        raise ValueError(
            f"image, generated and hole must be 2D arrays of one shape, got {image.shape}, "
            f"{generated.shape} and {hole.shape}"
        )


def blend_plain(image: np.ndarray, generated: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Known pixels from ``image``, hole pixels from ``generated``.

    Example:
        >>> blend_plain(np.zeros((1, 2)), np.ones((1, 2)), np.array([[True, False]])).tolist()
        [[1.0, 0.0]]
    """
    _check(image, generated, hole)
    return np.where(hole, generated, image)


def blend_poisson(image: np.ndarray, generated: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Poisson blending of ``generated`` into the ``hole`` of ``image`` (see the module).

    Args:
        image: 2D image; its values outside the hole are the boundary condition.
        generated: 2D guidance image (its Laplacian is kept in the hole).
        hole: 2D bool, True where the output is solved for.

    Returns:
        A float64 array equal to ``image`` outside the hole.

    Raises:
        ValueError: Shapes differ, or a part of the hole touches no known pixel (the
            system would have no unique solution).
    """
    import scipy.sparse
    import scipy.sparse.linalg
    from scipy.ndimage import binary_dilation, label

    _check(image, generated, hole)
    hole = np.asarray(hole, bool)
    out = np.asarray(image, np.float64).copy()
    if not hole.any():
        return out
    parts, count = label(hole)
    touching = np.unique(parts[binary_dilation(~hole) & hole])
    if len(touching) < count:
        raise ValueError(
            "every connected part of the hole must touch a known pixel, got one that touches none"
        )
    g = np.asarray(generated, np.float64)
    index = np.full(hole.shape, -1, np.int64)
    pixels = np.argwhere(hole)
    index[hole] = np.arange(len(pixels))
    n = len(pixels)
    diagonal = np.zeros(n)
    rhs = np.zeros(n)
    rows, cols = [], []
    for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        qi, qj = pixels[:, 0] + di, pixels[:, 1] + dj
        inside = (qi >= 0) & (qi < hole.shape[0]) & (qj >= 0) & (qj < hole.shape[1])
        p = np.flatnonzero(inside)
        qi, qj = qi[inside], qj[inside]
        diagonal[p] += 1.0
        rhs[p] += g[pixels[p, 0], pixels[p, 1]] - g[qi, qj]
        neighbour_in_hole = hole[qi, qj]
        rows.append(p[neighbour_in_hole])
        cols.append(index[qi[neighbour_in_hole], qj[neighbour_in_hole]])
        known = ~neighbour_in_hole
        np.add.at(rhs, p[known], out[qi[known], qj[known]])
    r, c = np.concatenate(rows), np.concatenate(cols)
    matrix = scipy.sparse.csr_matrix(
        (
            np.concatenate([diagonal, -np.ones(len(r))]),
            (np.concatenate([np.arange(n), r]), np.concatenate([np.arange(n), c])),
        ),
        shape=(n, n),
    )
    out[hole] = scipy.sparse.linalg.spsolve(matrix, rhs)
    return out


def blend(
    image: np.ndarray, generated: np.ndarray, hole: np.ndarray, method: str = "poisson"
) -> np.ndarray:
    """Blend by name: ``poisson`` or ``plain``.

    Raises:
        ValueError: Unknown method.
    """
    if method == "poisson":
        return blend_poisson(image, generated, hole)
    if method == "plain":
        return blend_plain(image, generated, hole).astype(np.float64)
    raise ValueError(f"method must be one of {', '.join(BLENDS)}, got {method!r}")
