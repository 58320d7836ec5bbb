"""Generation with a trained VAE: prior samples, latent interpolation, latent arithmetic.

All images are grid images (:class:`ctpipe.slice_grid.SliceGrid`): float32 ``(rows,
columns)`` in [0, 1] over the model's HU window, rows = ``j``, columns = ``i`` (as the
slice is displayed). The code of an image is its posterior mean ``mu`` (the encoder's
output, no sampling), so the same image always gives the same code.

* :func:`sample_images`: decode codes drawn from the prior ``N(0, I)`` (seeded).
* :func:`interpolate`: decode codes on the line (or the great circle, ``slerp``) between
  two images' codes.
* :func:`latent_arithmetic`: decode ``code(A) - code(B) + code(C)``.
* :func:`grid_slice`: one slice of a CT file put on the model's grid, to feed the above.
* :func:`write_image_grid`: a PNG of images in rows and columns.

Example:
    >>> from ctpipe.nets.vae import VAE
    >>> vae = VAE((32, 32), latent_dim=4, channels=(4, 8))
    >>> sample_images(vae, 3, seed=1).shape
    (3, 32, 32)
    >>> a, b = sample_images(vae, 2, seed=2)
    >>> interpolate(vae, a, b, steps=5).shape
    (5, 32, 32)
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import torch

    from ctpipe.nets.vae import VAE
    from ctpipe.slice_grid import SliceGrid

__all__ = [
    "encode_images",
    "grid_slice",
    "interpolate",
    "latent_arithmetic",
    "model_grid",
    "sample_images",
    "slerp",
    "write_image_grid",
]


def sample_images(model: VAE, n: int, *, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
    """Decode ``n`` codes drawn from the prior ``N(0, temperature^2 I)``.

    Args:
        model: The VAE.
        n: Number of images.
        seed: Seed of the draws (the same seed gives the same images).
        temperature: Scale of the prior's standard deviation (below 1 gives typical,
            smoother images).

    Returns:
        float32 ``(n, rows, columns)`` in [0, 1].
    """
    import torch

    from ctpipe.inference import eval_mode

    generator = torch.Generator().manual_seed(seed)
    with eval_mode(model), torch.inference_mode():
        images = model.sample(n, generator=generator, temperature=temperature)
    return images[:, 0].float().cpu().numpy()


def encode_images(model: VAE, images: np.ndarray) -> torch.Tensor:
    """Posterior means ``mu`` of grid images ``(n, rows, columns)``: ``(n, latent_dim)``."""
    import torch

    from ctpipe.inference import eval_mode

    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim == 2:
        x = x[None]
    x = x[:, None].to(model.device)
    model.check_input(x)
    with eval_mode(model), torch.inference_mode():
        return model.encode(x)[0]


def _decode(model: VAE, z: torch.Tensor) -> np.ndarray:
    import torch

    from ctpipe.inference import eval_mode

    with eval_mode(model), torch.inference_mode():
        return model.decode(z.to(model.device))[0][:, 0].float().cpu().numpy()


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between two codes at fractions ``t`` (``(steps,)``).

    Falls back to the straight line when the codes are (anti)parallel.

    Example:
        >>> import torch
        >>> a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
        >>> [round(v, 4) for v in slerp(a, b, torch.tensor([0.5]))[0].tolist()]
        [0.7071, 0.7071]
    """
    import torch

    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    t = t[:, None]
    if float(torch.sin(omega).abs()) < 1e-6:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def interpolate(
    model: VAE,
    image_a: np.ndarray,
    image_b: np.ndarray,
    *,
    steps: int = 8,
    method: Literal["linear", "slerp"] = "linear",
) -> np.ndarray:
    """Decode ``steps`` codes evenly spaced from ``code(A)`` to ``code(B)`` (both included).

    Args:
        model: The VAE.
        image_a: Grid image ``(rows, columns)``.
        image_b: Grid image, the same shape.
        steps: Number of images (>= 2).
        method: ``"linear"`` (the straight line) or ``"slerp"`` (the great circle, which
            keeps intermediate codes at a typical distance from the origin).

    Returns:
        float32 ``(steps, rows, columns)``.
    """
    import torch

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    if method not in ("linear", "slerp"):
        raise ValueError(f"method must be 'linear' or 'slerp', got {method!r}")
    codes = encode_images(model, np.stack([image_a, image_b])).float().cpu()
    t = torch.linspace(0.0, 1.0, steps)
    if method == "slerp":
        z = slerp(codes[0], codes[1], t)
    else:
        z = (1 - t)[:, None] * codes[0] + t[:, None] * codes[1]
    return _decode(model, z)


def latent_arithmetic(
    model: VAE, image_a: np.ndarray, image_b: np.ndarray, image_c: np.ndarray
) -> np.ndarray:
    """Decode ``code(A) - code(B) + code(C)``: C changed the way B differs from A.

    Returns:
        float32 ``(rows, columns)``.

    Example:
        >>> from ctpipe.nets.vae import VAE
        >>> vae = VAE((32, 32), latent_dim=4, channels=(4, 8))
        >>> a, b = sample_images(vae, 2, seed=3)
        >>> latent_arithmetic(vae, a, b, b).shape
        (32, 32)
    """
    codes = encode_images(model, np.stack([image_a, image_b, image_c]))
    return _decode(model, (codes[0] - codes[1] + codes[2])[None])[0]


def model_grid(model: VAE) -> SliceGrid:
    """The slice grid a VAE was trained on (from its checkpoint record).

    Raises:
        ValueError: The model was not loaded from a ctpipe VAE checkpoint (pass a grid).
    """
    from ctpipe.slice_grid import SliceGrid

    record = getattr(model, "checkpoint_record", None)
    if not isinstance(record, dict) or "grid" not in record:
        raise ValueError(
            "the model carries no slice grid (it was not loaded with ctpipe.nets.vae."
            "load_vae); pass grid=SliceGrid(...) explicitly"
        )
    return SliceGrid.from_dict(record["grid"])


def grid_slice(
    path: str | PathLike[str],
    grid: SliceGrid,
    slice_index: int | None = None,
    *,
    allow_irregular: bool = False,
) -> np.ndarray:
    """One axial slice of a CT file on ``grid``, centred on the body.

    Args:
        path: A DICOM series folder or file, or a NIfTI file.
        grid: The model's grid (:func:`model_grid`).
        slice_index: Slice ``k``; ``None``: the middle slice.
        allow_irregular: Read series with gaps or tilt.

    Returns:
        float32 ``(rows, columns)`` in [0, 1].

    Raises:
        InputError: The file cannot be read or has no such slice (the count is named).
    """
    from ctpipe.body_mask import body_bbox_centre, body_mask
    from ctpipe.errors import InputError
    from ctpipe.io.reader import read_study

    volume = read_study(path, allow_irregular=allow_irregular)
    hu, spacing = volume.hu, volume.spacing
    count = hu.shape[2]
    k = count // 2 if slice_index is None else slice_index
    if not -count <= k < count:
        raise InputError(path, f"no slice {k}: the volume has {count} slices (0 to {count - 1})")
    hu_slice = hu[:, :, k]
    centre = body_bbox_centre(body_mask(hu_slice))
    return grid.to_grid(hu_slice, spacing[:2], centre)[0][0, 0]


def write_image_grid(
    images: np.ndarray | Sequence[np.ndarray],
    path: str | PathLike[str],
    *,
    columns: int | None = None,
    gap: int = 2,
) -> Path:
    """Write images in [0, 1] as one greyscale PNG, row by row, atomically.

    Args:
        images: ``(n, rows, columns)`` (values outside [0, 1] are clipped).
        path: The PNG to write.
        columns: Images per row (default: all in one row).
        gap: Black pixels between images.

    Returns:
        The path written.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> path = write_image_grid(np.zeros((5, 8, 8)), tempfile.mkdtemp() + "/g.png", columns=2)
        >>> Image.open(path).size  # 2 columns x 3 rows of 8 px, 2 px gaps
        (18, 28)
    """
    from PIL import Image

    from ctpipe.io.atomic import atomic_path

    stack = np.asarray(images, dtype=np.float32)
    if stack.ndim != 3 or stack.shape[0] == 0:
        raise ValueError(f"images must be shaped (n, rows, columns), got {stack.shape}")
    n, h, w = stack.shape
    columns = n if columns is None else max(1, min(int(columns), n))
    rows = -(-n // columns)
    canvas = np.zeros((rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap), np.uint8)
    for index, image in enumerate(stack):
        r, c = divmod(index, columns)
        top, left = r * (h + gap), c * (w + gap)
        canvas[top : top + h, left : left + w] = np.round(np.clip(image, 0, 1) * 255)
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(canvas).save(tmp, format="PNG")
    return path
