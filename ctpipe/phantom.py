"""A seeded synthetic abdominal/lower-thoracic CT phantom with organ labels.

:func:`make_phantom` draws an elliptical body (subcutaneous fat ring around ~40 HU soft
tissue) in air, with liver, spleen, both kidneys, a vertebral body (cortical shell,
cancellous core, intervertebral discs) and, in the upper slices, both lung bases. Organ
sizes change smoothly from slice to slice, so every slice differs. The anatomy is fixed;
the seed only draws the Gaussian noise, so a seed always gives the same volume.

Orientation is axial head-first-supine: ``i`` runs to the patient's left (+x in LPS),
``j`` to posterior (+y) and ``k`` to superior (+z); the volume is centred on the origin.
:func:`write_phantom` writes the phantom as a DICOM series and as image and label NIfTI
files, which makes it the test and demo input of the whole pipeline.

Example:
    >>> phantom = make_phantom(shape=(64, 64, 8), seed=1)
    >>> phantom.hu.shape, phantom.labels.dtype.name, phantom.label_names["liver"]
    ((64, 64, 8), 'uint8', 1)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "LABEL_NAMES",
    "LPS_TO_RAS",
    "TISSUE_HU",
    "Phantom",
    "PhantomFiles",
    "make_phantom",
    "write_phantom",
]

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: Label value of each organ; 0 is everything else (air, fat, soft tissue, discs).
LABEL_NAMES: Mapping[str, int] = MappingProxyType(
    {
        "liver": 1,
        "spleen": 2,
        "kidney_right": 3,
        "kidney_left": 4,
        "spine": 5,
        "lung_right": 6,
        "lung_left": 7,
    }
)

#: Noise-free HU of each tissue.
TISSUE_HU: Mapping[str, float] = MappingProxyType(
    {
        "air": -1000.0,
        "fat": -100.0,
        "soft_tissue": 40.0,
        "liver": 60.0,
        "spleen": 50.0,
        "kidney": 30.0,
        "cortical_bone": 700.0,
        "cancellous_bone": 250.0,
        "disc": 80.0,
        "lung": -850.0,
    }
)

#: Distance along z (mm) between intervertebral discs, and the thickness of one disc.
_VERTEBRA_PERIOD_MM = 30.0
_DISC_MM = 6.0


@dataclass(frozen=True, eq=False)
class Phantom:
    """A synthetic CT volume, its organ labels and its geometry.

    Attributes:
        hu: HU as float32, indexed ``(i, j, k)`` = (column, row, slice).
        labels: Organ label per voxel (uint8, same shape), values from ``label_names``.
        label_names: Organ name -> label value; 0 is background.
        affine_lps: 4x4 map from ``(i, j, k, 1)`` to LPS millimetres.
        seed: Seed of the noise.
        noise_hu: Standard deviation of the noise (HU).

    Example:
        >>> p = make_phantom(shape=(16, 16, 4), spacing=(2.0, 2.0, 5.0))
        >>> p.spacing, float(p.to_ras_affine()[0, 0])
        ((2.0, 2.0, 5.0), -2.0)
    """

    hu: np.ndarray
    labels: np.ndarray
    label_names: Mapping[str, int]
    affine_lps: np.ndarray
    seed: int = 0
    noise_hu: float = 0.0

    def __post_init__(self) -> None:
        if self.hu.ndim != 3 or self.labels.shape != self.hu.shape:
            raise ValueError(
                f"hu must be 3D and labels the same shape, got {self.hu.shape} and "
                f"{self.labels.shape}"
            )
        if np.shape(self.affine_lps) != (4, 4):
            raise ValueError(f"affine_lps must be 4x4, got shape {np.shape(self.affine_lps)}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Volume shape ``(i, j, k)``."""
        return tuple(int(n) for n in self.hu.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel spacing (mm) along ``i``, ``j`` and ``k``."""
        lengths = np.linalg.norm(np.asarray(self.affine_lps)[:3, :3], axis=0)
        return tuple(float(v) for v in lengths)  # type: ignore[return-value]

    def to_ras_affine(self) -> np.ndarray:
        """Return the ``(i, j, k, 1)`` -> RAS affine (the NIfTI/nibabel convention)."""
        return LPS_TO_RAS @ np.asarray(self.affine_lps, dtype=np.float64)

    def mask(self, name: str) -> np.ndarray:
        """Return the boolean mask of one organ.

        Args:
            name: A key of ``label_names``.

        Returns:
            A boolean array of the volume's shape.

        Example:
            >>> int(make_phantom(shape=(32, 32, 8)).mask("spine").sum()) > 0
            True
        """
        if name not in self.label_names:
            raise ValueError(f"name must be one of {sorted(self.label_names)}, got {name!r}")
        return self.labels == self.label_names[name]


@dataclass(frozen=True)
class PhantomFiles:
    """Where :func:`write_phantom` put the phantom.

    Attributes:
        folder: The output folder.
        dicom_folder: Folder of the DICOM series (``folder/dicom``).
        dicom_files: The DICOM files in slice order.
        ct_nifti: The HU image, ``folder/phantom_ct.nii.gz`` (float32).
        labels_nifti: The labels, ``folder/phantom_labels.nii.gz`` (uint8).
        label_names_json: Organ name -> label value, ``folder/phantom_labels.json``.
    """

    folder: Path
    dicom_folder: Path
    dicom_files: list[Path]
    ct_nifti: Path
    labels_nifti: Path
    label_names_json: Path


def make_phantom(
    shape: Sequence[int] = (128, 128, 24),
    spacing: Sequence[float] = (1.5, 1.5, 3.0),
    seed: int = 0,
    noise_hu: float = 10.0,
) -> Phantom:
    """Draw the phantom on a grid of ``shape`` voxels of ``spacing`` millimetres.

    The anatomy scales with the in-plane field of view, so small grids (for fast tests)
    hold the same organs as large ones.

    Args:
        shape: Voxels along ``(i, j, k)``; at least 8 in-plane and 1 slice.
        spacing: Voxel size (mm) along ``(i, j, k)``, positive.
        seed: Seed of the Gaussian noise.
        noise_hu: Standard deviation of the noise (HU), zero or more.

    Returns:
        The :class:`Phantom`.

    Raises:
        ValueError: When shape, spacing or noise_hu break the rules above.

    Example:
        >>> p = make_phantom(shape=(64, 64, 12), noise_hu=0.0)
        >>> float(p.hu[p.mask("liver")].mean())
        60.0
    """
    dims, step = _check_grid(shape, spacing)
    if not (np.isfinite(noise_hu) and noise_hu >= 0):
        raise ValueError(f"noise_hu must be zero or more, got {noise_hu}")
    affine = _centred_affine(dims, step)
    u, v, t, z = _coordinates(dims, step, affine)
    hu, labels = _draw_anatomy(u, v, t, z)
    rng = np.random.default_rng(seed)
    hu = hu + rng.normal(0.0, noise_hu, size=dims) if noise_hu > 0 else hu
    hu = np.rint(hu)  # whole HU, as a scanner stores them: DICOM and NIfTI agree exactly
    return Phantom(
        hu.astype(np.float32),
        labels,
        dict(LABEL_NAMES),
        affine,
        seed=int(seed),
        noise_hu=float(noise_hu),
    )


def write_phantom(
    folder: str | PathLike[str], phantom: Phantom | None = None, **series_kwargs: Any
) -> PhantomFiles:
    """Write a phantom as a DICOM series, an image NIfTI and a label NIfTI.

    The NIfTI files use the RAS affine ``diag(-1, -1, 1, 1) @ affine_lps`` as both qform
    and sform (code 1, scanner), so nibabel, SimpleITK and the DICOM series agree on
    where every voxel lies. Every file is written atomically.

    Args:
        folder: Output folder; created when missing.
        phantom: The phantom; ``make_phantom()`` when None.
        **series_kwargs: Passed on to :func:`ctpipe.export.dicom_series.write_ct_series`
            (for example ``transfer_syntax`` or ``series_description``).

    Returns:
        The :class:`PhantomFiles`.

    Example:
        >>> import tempfile
        >>> files = write_phantom(tempfile.mkdtemp(), make_phantom(shape=(16, 16, 3)))
        >>> len(files.dicom_files), files.ct_nifti.name
        (3, 'phantom_ct.nii.gz')
    """
    from ctpipe.export.dicom_series import write_ct_series
    from ctpipe.io.nifti import write_nifti

    phantom = make_phantom() if phantom is None else phantom
    out = Path(folder)
    series_kwargs.setdefault("series_description", "ctpipe phantom")
    series_kwargs.setdefault("extra", {"BodyPartExamined": "ABDOMEN"})
    dicom_files = write_ct_series(phantom.hu, phantom.affine_lps, out / "dicom", **series_kwargs)
    files = PhantomFiles(
        folder=out,
        dicom_folder=out / "dicom",
        dicom_files=dicom_files,
        ct_nifti=out / "phantom_ct.nii.gz",
        labels_nifti=out / "phantom_labels.nii.gz",
        label_names_json=out / "phantom_labels.json",
    )
    ras = phantom.to_ras_affine()
    write_nifti(phantom.hu.astype(np.float32), ras, files.ct_nifti)
    write_nifti(phantom.labels.astype(np.uint8), ras, files.labels_nifti, intent="label")
    _write_json(dict(phantom.label_names), files.label_names_json)
    return files


def _check_grid(
    shape: Sequence[int], spacing: Sequence[float]
) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    dims = tuple(int(n) for n in shape)
    if len(dims) != 3 or min(dims[:2]) < 8 or dims[2] < 1 or dims != tuple(shape):
        raise ValueError(
            f"shape must be 3 integers, at least 8 in-plane and 1 slice, got {tuple(shape)}"
        )
    step = tuple(float(s) for s in spacing)
    if len(step) != 3 or not all(np.isfinite(s) and s > 0 for s in step):
        raise ValueError(f"spacing must be 3 positive numbers (mm), got {tuple(spacing)}")
    return dims, step  # type: ignore[return-value]


def _centred_affine(dims: tuple[int, ...], step: tuple[float, ...]) -> np.ndarray:
    affine = np.diag([*step, 1.0])
    affine[:3, 3] = [-(n - 1) / 2 * s for n, s in zip(dims, step, strict=True)]
    return affine


def _coordinates(
    dims: tuple[int, ...], step: tuple[float, ...], affine: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return broadcastable normalised u (left), v (posterior), t (0..1 up) and z (mm)."""
    radius = min(dims[0] * step[0], dims[1] * step[1]) / 2
    x = (affine[0, 3] + step[0] * np.arange(dims[0])) / radius
    y = (affine[1, 3] + step[1] * np.arange(dims[1])) / radius
    t = np.arange(dims[2]) / max(dims[2] - 1, 1) if dims[2] > 1 else np.array([0.5])
    z = affine[2, 3] + step[2] * np.arange(dims[2])
    return x[:, None, None], y[None, :, None], t[None, None, :], z[None, None, :]


def _ellipse(u: np.ndarray, v: np.ndarray, centre: tuple[Any, Any], axes: tuple[Any, Any]):
    """Boolean mask of an ellipse; axes may vary per slice (zero axes give no voxels)."""
    au = np.maximum(axes[0], 1e-9)
    av = np.maximum(axes[1], 1e-9)
    inside = ((u - centre[0]) / au) ** 2 + ((v - centre[1]) / av) ** 2 <= 1.0
    return inside & (np.asarray(axes[0]) > 0) & (np.asarray(axes[1]) > 0)


def _extent(t: np.ndarray, centre: float, half_height: float) -> np.ndarray:
    """Cross-section scale of an ellipsoid along t: 1 at its centre, 0 beyond its ends."""
    return np.sqrt(np.clip(1.0 - ((t - centre) / half_height) ** 2, 0.0, None))


def _draw_anatomy(
    u: np.ndarray, v: np.ndarray, t: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    shape = np.broadcast_shapes(u.shape, v.shape, t.shape)
    hu = np.full(shape, TISSUE_HU["air"], dtype=np.float64)
    labels = np.zeros(shape, dtype=np.uint8)
    body_a, body_b = 0.9 - 0.04 * t, 0.68 + 0.03 * np.sin(np.pi * t)
    hu[np.broadcast_to(_ellipse(u, v, (0, 0), (body_a, body_b)), shape)] = TISSUE_HU["fat"]
    inner = _ellipse(u, v, (0, 0), (body_a - 0.07, body_b - 0.07))
    hu[np.broadcast_to(inner, shape)] = TISSUE_HU["soft_tissue"]
    for name, value, mask in _organs(u, v, t):
        mask = np.broadcast_to(mask & inner, shape)
        hu[mask] = value
        labels[mask] = LABEL_NAMES[name]
    _draw_spine(hu, labels, u, v, z)
    return hu, labels


def _organs(u: np.ndarray, v: np.ndarray, t: np.ndarray) -> list[tuple[str, float, np.ndarray]]:
    """Organs in painting order (later ones cover earlier ones)."""
    liver, spleen = _extent(t, 0.6, 0.5), _extent(t, 0.6, 0.3)
    kidney = _extent(t, 0.3, 0.3)
    lung = np.sqrt(np.clip((t - 0.62) / 0.38, 0.0, 1.0))
    # name, tissue, centre (u, v), semi-axes (u, v), cross-section scale along t
    table = [
        ("liver", "liver", (-0.36 + 0.04 * t, -0.05), (0.36, 0.38), liver),
        ("spleen", "spleen", (0.52, 0.22), (0.14, 0.2), spleen),
        ("kidney_right", "kidney", (-0.36, 0.38), (0.11, 0.16), kidney),
        ("kidney_left", "kidney", (0.36, 0.38), (0.11, 0.16), kidney),
        ("lung_right", "lung", (-0.45, 0.05), (0.3, 0.42), lung),
        ("lung_left", "lung", (0.45, 0.05), (0.3, 0.42), lung),
    ]
    return [
        (name, TISSUE_HU[tissue], _ellipse(u, v, centre, (axes[0] * scale, axes[1] * scale)))
        for name, tissue, centre, axes, scale in table
    ]


def _draw_spine(
    hu: np.ndarray, labels: np.ndarray, u: np.ndarray, v: np.ndarray, z: np.ndarray
) -> None:
    shape = hu.shape
    outer = np.broadcast_to(_ellipse(u, v, (0.0, 0.42), (0.14, 0.13)), shape)
    core = np.broadcast_to(_ellipse(u, v, (0.0, 0.42), (0.105, 0.095)), shape)
    disc = np.broadcast_to(np.mod(z, _VERTEBRA_PERIOD_MM) < _DISC_MM, shape)
    hu[outer] = TISSUE_HU["cortical_bone"]
    hu[core] = TISSUE_HU["cancellous_bone"]
    labels[outer] = LABEL_NAMES["spine"]
    hu[outer & disc] = TISSUE_HU["disc"]
    labels[outer & disc] = 0


def _write_json(values: dict[str, int], path: Path) -> None:
    from ctpipe.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
