"""Read one DICOM series into an HU volume with its geometry.

:func:`select_series` picks the series to read from a scan (refusing to guess between
several), and :func:`read_dicom_volume` decodes its pixels, applies each slice's
RescaleSlope/Intercept and returns a :class:`CTVolume` whose affine is exact.

Example:
    >>> from ctpipe.io.dicom_volume import read_dicom_volume
    >>> volume = read_dicom_volume("/data/CT/series1")  # doctest: +SKIP
    >>> volume.hu.shape, volume.spacing  # doctest: +SKIP
    ((512, 512, 134), (1.07, 1.07, 3.0))
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import pydicom.pixels

from ctpipe.errors import (
    AmbiguousSeriesError,
    CorruptDicomError,
    InputError,
    SeriesGeometryError,
    UnsupportedModalityError,
)
from ctpipe.io.dicom_header import SliceHeader
from ctpipe.io.discovery import DAMAGED_NEIGHBOUR, DicomScan, DicomSeries, scan_dicom
from ctpipe.io.geometry import affine_lps, lps_to_ras, spacing_of
from ctpipe.io.header_checks import is_hu_problem

PathSource = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


@dataclass
class CTVolume:
    """An HU volume with exact geometry and the identity of its source series.

    Attributes:
        hu: Float32 HU values indexed (i, j, k) = (column, row, slice).
        affine_lps: 4x4 map from (i, j, k, 1) to DICOM patient coordinates (mm).
        series: The series it came from (None for NIfTI sources).
        meta: Flat metadata (DICOM identity, kernel, problems tolerated) for MONAI.
    """

    hu: np.ndarray
    affine_lps: np.ndarray
    series: DicomSeries | None = None
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def affine_ras(self) -> np.ndarray:
        """The affine in RAS, MONAI's and NIfTI's frame."""
        return lps_to_ras(self.affine_lps)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size (mm) along (i, j, k)."""
        return spacing_of(self.affine_lps)

    @classmethod
    def from_dicom_series(cls, source: PathSource | DicomSeries, **kwargs) -> CTVolume:
        """Read a DICOM series; see :func:`read_dicom_volume` for the arguments.

        Example:
            >>> CTVolume.from_dicom_series("/data/CT/series1").hu.dtype  # doctest: +SKIP
            dtype('float32')
        """
        return read_dicom_volume(source, **kwargs)

    @classmethod
    def from_nifti(cls, path: str | os.PathLike[str]) -> CTVolume:
        """Read a NIfTI volume (values taken as HU) with its affine.

        A 2-D image becomes one slice; trailing axes of length 1 are dropped. A 4-D
        series of several volumes is refused.

        Example:
            >>> CTVolume.from_nifti("ct.nii.gz").spacing  # doctest: +SKIP
            (0.8, 0.8, 3.0)
        """
        from ctpipe.io.nifti import read_nifti

        array, affine_ras = read_nifti(path)
        if array.ndim == 2:
            array = array[:, :, None]
        while array.ndim > 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim != 3:
            raise InputError(
                path,
                f"holds a {array.ndim}-D array of shape {tuple(array.shape)}; give one 3-D "
                "CT volume",
            )
        meta: dict[str, object] = {"ctpipe_source_files": [str(path)]}
        return cls(np.asarray(array, dtype=np.float32), lps_to_ras(affine_ras), None, meta)


def select_series(
    scan: DicomScan,
    *,
    series_uid: str | None = None,
    modalities: Sequence[str] | None = ("CT",),
) -> DicomSeries:
    """Choose the one series to read from a scan.

    Args:
        scan: The result of :func:`ctpipe.io.discovery.scan_dicom`.
        series_uid: The SeriesInstanceUID (or ``nouid-...`` key) to pick; needed when
            several series of an allowed modality are present.
        modalities: Modalities that may be read; None allows any.

    Returns:
        The selected series.

    Raises:
        InputError: ``series_uid`` names no series found.
        UnsupportedModalityError: No series has an allowed modality.
        AmbiguousSeriesError: Several series qualify and none was named.

    Example:
        >>> select_series(scan_dicom("/data/mixed"), series_uid="1.2.3")  # doctest: +SKIP
    """
    found = scan.series
    if series_uid is not None:
        chosen = [s for s in found if s.key == series_uid]
        if not chosen:
            raise InputError(scan.root, f"no series {series_uid!r}; found: {_listing(found)}")
        found = chosen
    allowed = [s for s in found if modalities is None or s.modality in modalities]
    if not allowed:
        kinds = sorted({s.modality or "(none)" for s in found})
        raise UnsupportedModalityError(
            scan.root,
            f"modality {', '.join(kinds)} is not allowed (allowed: {', '.join(modalities or [])}); "
            "pass modalities=None (or --allow-modality) to read it anyway",
        )
    if len(allowed) > 1:
        raise AmbiguousSeriesError(
            scan.root,
            f"{len(allowed)} series found, say which to read with series_uid "
            f"(--series): {_listing(allowed)}",
        )
    return allowed[0]


def _listing(series: Sequence[DicomSeries]) -> str:
    return "; ".join(
        f"{s.key} ({s.modality}, {s.shape[2]} slice(s), "
        f"{s.first.series_description or 'no description'})"
        for s in series
    )


def read_dicom_volume(
    source: PathSource | DicomSeries,
    *,
    series_uid: str | None = None,
    modalities: Sequence[str] | None = ("CT",),
    allow_irregular: bool = False,
    allow_non_hu: bool = False,
) -> CTVolume:
    """Read one DICOM series into HU with its exact geometry.

    Args:
        source: A folder (scanned recursively), a file, a list of files, or a series
            from :func:`ctpipe.io.discovery.scan_dicom`.
        series_uid: Which series to read when ``source`` holds several.
        modalities: Modalities that may be read (CT by default); None allows any.
        allow_irregular: Read series with gaps, uneven spacing or a tilted gantry
            anyway (with a warning): the affine then uses the mean slice step, which is
            exact for a tilt and approximate for gaps.
        allow_non_hu: Read a CT series whose HU rescale is missing or invalid anyway
            (with a warning; a missing or zero slope is taken as 1, a missing
            intercept as 0).

    Returns:
        The :class:`CTVolume`.

    Raises:
        SeriesGeometryError: The slices do not form a regular grid (names the gap), or
            their headers are invalid (a missing rescale, a zero pixel spacing, a size
            above the voxel limit, ...).
        CorruptDicomError: A file's pixel data cannot be decoded (names the file).

    Example:
        >>> vol = read_dicom_volume("/data/CT/series1")  # doctest: +SKIP
    """
    if isinstance(source, DicomSeries):
        series = source
        if modalities is not None and series.modality not in modalities:
            raise UnsupportedModalityError(
                series.folder,
                f"modality {series.modality} is not allowed ({', '.join(modalities)})",
            )
    else:
        series = select_series(scan_dicom(source), series_uid=series_uid, modalities=modalities)
    if series.is_multiframe and not series.problems:
        hu, affine = _read_multiframe(series.first.path)
    else:
        hu, affine = _read_slices(series, allow_irregular, allow_non_hu)
    return CTVolume(hu=hu, affine_lps=affine, series=series, meta=series_meta(series))


def _read_slices(
    series: DicomSeries, allow_irregular: bool, allow_non_hu: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    _check_readable(series, allow_irregular, allow_non_hu)
    layout = series.layout
    if layout is None:
        raise SeriesGeometryError(series.folder, "; ".join(series.problems))
    first = series.first
    affine = affine_lps(first.orientation, first.position, first.pixel_spacing, layout.step)
    return _read_pixels(series), affine


def _read_multiframe(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an enhanced (multi-frame) image through highdicom's volume support."""
    import highdicom as hd

    try:
        volume = hd.imread(path).get_volume(
            dtype=np.float32, apply_modality_transform=True, apply_real_world_transform=False
        )
    except Exception as exc:  # highdicom raises several types for irregular frames
        raise SeriesGeometryError(path, f"frames do not form a regular volume ({exc})") from exc
    hu = np.ascontiguousarray(volume.array.transpose(2, 1, 0), dtype=np.float32)
    affine = np.asarray(volume.affine, dtype=np.float64)[:, [2, 1, 0, 3]]
    normal = np.cross(affine[:3, 0], affine[:3, 1])
    if np.dot(affine[:3, 2], normal) < 0:  # same slice order as single-frame series
        affine[:3, 3] += affine[:3, 2] * (hu.shape[2] - 1)
        affine[:3, 2] *= -1
        hu = np.ascontiguousarray(hu[:, :, ::-1])
    return hu, affine


def _check_readable(series: DicomSeries, allow_irregular: bool, allow_non_hu: bool) -> None:
    for header in series.slices:
        if header.pixel_data_problem:
            raise CorruptDicomError(header.path, header.pixel_data_problem)
    blocking = [p for p in series.problems if _is_blocking(p, allow_irregular, allow_non_hu)]
    if blocking:
        raise SeriesGeometryError(series.folder, "; ".join(blocking))
    if series.problems:
        warnings.warn(
            f"{series.folder}: reading despite: {'; '.join(series.problems)}", stacklevel=3
        )


def _is_blocking(problem: str, allow_irregular: bool, allow_non_hu: bool = False) -> bool:
    tolerable = ("missing slice", "uneven spacing", "tilted gantry", DAMAGED_NEIGHBOUR)
    if allow_non_hu and is_hu_problem(problem):
        return False
    return not (allow_irregular and problem.startswith(tolerable))


#: Slices decoded into a scratch slab before one cache-blocked transpose into the volume.
SLAB_SLICES = 16
#: Rows per tile of that transpose (16 x 16 tiles measured fastest; 3x a plain copy).
TILE_ROWS = 16


def _read_pixels(series: DicomSeries) -> np.ndarray:
    """Decode into a C-ordered (i, j, k) float32 volume, the layout MONAI works in.

    Writing each decoded (row, column) slice straight into an (i, j, k) array is a
    strided write that costs more than decoding; slabs of slices transposed tile by tile
    keep both reads and writes in cache.
    """
    first = series.first
    count = len(series.slices)
    hu = np.empty((first.columns, first.rows, count), dtype=np.float32)
    slab = np.empty((min(SLAB_SLICES, count), first.rows, first.columns), dtype=np.float32)
    for k0 in range(0, count, SLAB_SLICES):
        headers = series.slices[k0 : k0 + SLAB_SLICES]
        for s, header in enumerate(headers):
            _decode_hu(header, out=slab[s])
        _transpose_into(slab[: len(headers)], hu[:, :, k0 : k0 + len(headers)])
    return hu


def _transpose_into(slab: np.ndarray, out: np.ndarray) -> None:
    """Set ``out[i, j, s] = slab[s, j, i]`` in row tiles."""
    for j0 in range(0, slab.shape[1], TILE_ROWS):
        out[:, j0 : j0 + TILE_ROWS, :] = slab[:, j0 : j0 + TILE_ROWS, :].transpose(2, 1, 0)


def _decode_hu(header: SliceHeader, out: np.ndarray) -> None:
    try:
        stored = _stored_values(header)
    except CorruptDicomError:
        raise
    except Exception as exc:  # decoders raise many types on damaged data
        raise CorruptDicomError(header.path, f"cannot decode pixel data ({exc})") from exc
    if stored.shape != out.shape:
        raise CorruptDicomError(
            header.path,
            f"pixel array shape {stored.shape} != Rows x Columns {header.rows}x{header.columns}",
        )
    out[...] = stored
    slope = header.rescale_slope or 1.0  # missing or 0: only read when allowed
    intercept = header.rescale_intercept or 0.0
    if slope != 1.0:
        out *= np.float32(slope)
    if intercept != 0.0:
        out += np.float32(intercept)


def _stored_values(header: SliceHeader) -> np.ndarray:
    """Stored pixel values of one slice, exactly as pydicom decodes them.

    Uncompressed little-endian frames are read straight from the offset the header scan
    found (the header is not parsed a second time); everything else goes through
    pydicom's decoders (RLE, JPEG 2000, JPEG-LS, big endian, ...).
    """
    if not header.is_native_single_frame:
        return pydicom.pixels.pixel_array(header.path)
    kind = "i" if header.pixel_representation else "u"
    dtype = np.dtype(f"<{kind}{header.bits_allocated // 8}")
    count = header.rows * header.columns
    values = np.fromfile(header.path, dtype=dtype, count=count, offset=header.pixel_data_offset)
    if values.size != count:
        raise CorruptDicomError(
            header.path, f"pixel data ends after {values.size} of {count} pixels"
        )
    return values.reshape(header.rows, header.columns)


def series_meta(series: DicomSeries) -> dict[str, object]:
    """Flat, collatable metadata describing a series' identity.

    Example:
        >>> series_meta(series)["Modality"]  # doctest: +SKIP
        'CT'
    """
    first = series.first
    return {
        "PatientID": first.patient_id,
        "PatientName": first.patient_name,
        "StudyInstanceUID": first.study_instance_uid,
        "SeriesInstanceUID": first.series_instance_uid,
        "FrameOfReferenceUID": first.frame_of_reference_uid,
        "Modality": first.modality,
        "SeriesDescription": first.series_description,
        "SeriesNumber": first.series_number if first.series_number is not None else -1,
        "StudyDate": first.study_date,
        "ConvolutionKernel": first.convolution_kernel,
        "Manufacturer": first.manufacturer,
        "SliceThickness": first.slice_thickness
        if first.slice_thickness is not None
        else float("nan"),
        "ctpipe_series_key": series.key,
        "ctpipe_source_files": [str(s.path) for s in series.slices],
        "ctpipe_problems": "; ".join(series.problems),
    }
