"""Write a label volume as a DICOM RT Structure Set (rt-utils) referencing its source series.

Treatment-planning systems and many research viewers read RTSTRUCT and not DICOM-SEG.
:func:`write_rtstruct` turns integer labels on a source series' grid (``(i, j, k)`` =
columns, rows, slices) into one ROI per class present: rt-utils traces each slice's
outlines (OpenCV contours through the centres of the boundary voxels) and maps them to
patient coordinates. The structure set joins the source's patient, study and frame of
reference, references every source image, and names each ROI by its class, with its
SNOMED CT type code (:mod:`ctpipe.export.terminology`) as the RT ROI Identification
Code, ``ORGAN`` as interpreted type and ``AUTOMATIC`` generation.

rt-utils' known pitfalls, and what is done about them:

* its mask is ``(rows, columns, slices)``: ctpipe's labels are transposed for it (the
  "rotated or flipped RTSTRUCT" reports, rt-utils issues 84, 102 and 110, come from
  passing ``(i, j, k)`` arrays);
* it scales the column index by the row spacing (``PixelSpacing`` read in the wrong
  order, rt-utils issue 92): the datasets it sees carry ``PixelSpacing`` reversed, which
  gives the right coordinates for non-square pixels too (a test checks the contour points
  against the series' affine);
* it reads every DICOM file under a folder: here it is given the source datasets in
  slice order instead, never a folder;
* it places slices by their mean spacing: series with uneven spacing or a tilted gantry
  are refused.

:func:`read_rtstruct_masks` rasterises the contours back onto a grid from its affine
(scikit-image polygons, holes subtracted by nesting depth), independently of rt-utils.

Example:
    >>> import numpy as np, pydicom, tempfile
    >>> from ctpipe.export.dicom_series import write_ct_series
    >>> folder = tempfile.mkdtemp()
    >>> affine = np.diag([0.8, 0.8, 2.0, 1.0])
    >>> files = write_ct_series(np.zeros((32, 32, 3), np.float32), affine, folder + "/ct")
    >>> sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    >>> labels = np.zeros((32, 32, 3), np.uint8)
    >>> labels[8:20, 10:24, :] = 1
    >>> path = write_rtstruct(labels, {"liver": 1}, sources, folder + "/rtstruct.dcm")
    >>> masks = read_rtstruct_masks(path, labels.shape, affine)
    >>> bool((masks["liver"] == (labels == 1)).all())
    True
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence
from contextlib import redirect_stdout
from os import PathLike
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from ctpipe import __version__
from ctpipe.export.terminology import segment_code
from ctpipe.io.atomic import atomic_path

__all__ = ["RTSTRUCT_SOP_CLASS", "read_rtstruct_masks", "write_rtstruct"]

#: SOP Class UID of the RT Structure Set Storage.
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
#: Largest difference (mm) between slice steps, and largest tilt (mm of in-plane offset
#: per slice), accepted as an evenly spaced, untilted series.
_STEP_TOLERANCE_MM = 1e-3


def write_rtstruct(
    labels: np.ndarray,
    class_map: Mapping[str, int],
    source_images: Sequence[Dataset],
    path: str | PathLike[str],
    *,
    series_description: str = "ctpipe structures",
    series_number: int = 3000,
    structure_set_label: str = "ctpipe",
    algorithm_name: str = "ctpipe segmenter",
) -> Path:
    """Write ``labels`` as an RT Structure Set of ``source_images`` (atomically).

    Args:
        labels: Integer labels ``(i, j, k)`` on the source grid: ``(columns, rows,
            slices)`` with slice ``k`` the ``k``-th of ``source_images``.
        class_map: Class name -> label value; background 0 is not a structure.
        source_images: The source series' datasets (pixel data not needed), one per
            slice, in slice order.
        path: The ``.dcm`` file to write.
        series_description: SeriesDescription.
        series_number: SeriesNumber.
        structure_set_label: StructureSetLabel (16 characters at most are kept).
        algorithm_name: ROIGenerationDescription of each ROI.

    Returns:
        The written path.

    Raises:
        ValueError: Labels of the wrong shape, values ``class_map`` lacks, a multi-frame
            source, or slices that are unevenly spaced or tilted.
    """
    from rt_utils import RTStruct, ds_helper

    sources = _geometry_views(source_images)
    labels = np.asarray(labels)
    expected = (int(sources[0].Columns), int(sources[0].Rows), len(sources))
    if labels.ndim != 3 or labels.shape != expected:
        raise ValueError(
            f"labels must have the source grid's shape (columns, rows, slices) = {expected}, "
            f"got {labels.shape}"
        )
    names = {int(value): name for name, value in class_map.items()}
    present = sorted(int(v) for v in np.unique(labels) if v != 0)
    unknown = sorted(set(present) - set(names))
    if unknown:
        raise ValueError(f"labels hold values {unknown} that class_map {dict(class_map)} lacks")
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()):  # rt-utils prints
        warnings.simplefilter("ignore", DeprecationWarning)
        structure = RTStruct(sources, ds_helper.create_rtstruct_dataset(sources))
        for value in present:
            structure.add_roi(
                mask=np.ascontiguousarray((labels == value).transpose(1, 0, 2)),
                name=names[value][:64],
                roi_generation_algorithm=0,  # AUTOMATIC
            )
    ds = structure.ds
    _describe(ds, source_images[0], series_description, series_number, structure_set_label)
    for roi, observation in zip(
        ds.StructureSetROISequence, ds.RTROIObservationsSequence, strict=True
    ):
        roi.ROIGenerationDescription = algorithm_name[:64]
        _observe(observation, str(roi.ROIName))
    for roi_contour in ds.ROIContourSequence:
        for contour in roi_contour.ContourSequence:
            contour.NumberOfContourPoints = len(contour.ContourData) // 3
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ds.save_as(tmp, enforce_file_format=True)
    return Path(path)


def _geometry_views(source_images: Sequence[Dataset]) -> list[Dataset]:
    """Copies of the sources as rt-utils needs them (see the module's notes)."""
    if not source_images:
        raise ValueError("source_images must hold the source series, got none")
    if len(source_images) == 1 and int(source_images[0].get("NumberOfFrames", 1)) > 1:
        raise ValueError(
            "RTSTRUCT export needs a series of single-frame images (one file per slice), "
            "got one multi-frame image"
        )
    views = []
    for ds in source_images:
        view = Dataset(ds)
        rows, columns = (float(v) for v in ds.PixelSpacing)
        view.PixelSpacing = [columns, rows]  # rt-utils issue 92: it reads them swapped
        for keyword in ("StudyDate", "StudyTime", "StudyID"):
            if keyword not in view:
                setattr(view, keyword, "")
        views.append(view)
    _check_regular(views)
    return views


def _check_regular(sources: Sequence[Dataset]) -> None:
    """Refuse series rt-utils would misplace: uneven slice steps or a tilted gantry."""
    orientation = np.array([float(v) for v in sources[0].ImageOrientationPatient])
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in sources])
    if len(sources) < 2:
        return
    steps = np.diff(positions, axis=0)
    along = steps @ normal
    across = np.linalg.norm(steps - along[:, None] * normal, axis=1)
    if np.ptp(along) > _STEP_TOLERANCE_MM or across.max() > _STEP_TOLERANCE_MM:
        raise ValueError(
            f"RTSTRUCT export needs evenly spaced, untilted slices; this series steps "
            f"{along.min():.4g} .. {along.max():.4g} mm along the normal and up to "
            f"{across.max():.4g} mm across it"
        )


def _describe(ds: Dataset, source: Dataset, description: str, number: int, label: str) -> None:
    """Replace rt-utils' placeholders with ctpipe's identity and the source's study."""
    ds.Manufacturer = "ctpipe"
    ds.ManufacturerModelName = "ctpipe"
    ds.SoftwareVersions = str(__version__)
    if "InstitutionName" in ds:
        del ds.InstitutionName
    ds.SeriesDescription = description[:64]
    ds.SeriesNumber = int(number)
    ds.InstanceNumber = 1
    ds.StructureSetLabel = label[:16]
    ds.StructureSetName = label[:64]
    ds.ReferringPhysicianName = source.get("ReferringPhysicianName", "")
    ds.AccessionNumber = source.get("AccessionNumber", "")
    ds.OperatorsName = ""
    ds.FrameOfReferenceUID = source.FrameOfReferenceUID
    ds.PositionReferenceIndicator = source.get("PositionReferenceIndicator", "")
    for keyword in ("PatientSize", "PatientWeight", "PatientAge"):
        if keyword in ds and not ds[keyword].value:
            del ds[keyword]


def _observe(observation: Dataset, name: str) -> None:
    """An ROI observation: ORGAN, and the SNOMED CT type code when the table knows it."""
    observation.RTROIInterpretedType = "ORGAN"
    observation.ROIInterpreter = ""
    if "ROIObservationDescription" in observation:
        del observation.ROIObservationDescription  # rt-utils' viewer settings
    code = segment_code(name)
    if not code.is_generic:
        item = Dataset()
        item.CodeValue = code.type.value
        item.CodingSchemeDesignator = code.type.scheme_designator
        item.CodeMeaning = code.type.meaning
        observation.RTROIIdentificationCodeSequence = DicomSequence([item])


def read_rtstruct_masks(
    path: str | PathLike[str], shape: Sequence[int], affine_lps: np.ndarray
) -> dict[str, np.ndarray]:
    """Each ROI of an RT Structure Set as a boolean mask on a grid ``(i, j, k)``.

    Contour points (patient coordinates, mm) are mapped to voxel indices with the inverse
    of ``affine_lps``; each planar contour is filled on its slice (voxel centres inside
    or on the outline), and a contour inside an odd number of others is a hole.

    Args:
        path: The RTSTRUCT file.
        shape: The grid's shape ``(i, j, k)``.
        affine_lps: The grid's ``(i, j, k, 1)`` -> LPS affine.

    Returns:
        ROI name -> boolean mask of ``shape``.

    Raises:
        ValueError: The file is not an RT Structure Set, or a contour lies off the
            grid's slices.
    """
    ds = pydicom.dcmread(path)
    if str(ds.get("SOPClassUID", "")) != RTSTRUCT_SOP_CLASS:
        raise ValueError(f"{path}: not an RT Structure Set (SOPClassUID {ds.get('SOPClassUID')})")
    to_voxel = np.linalg.inv(np.asarray(affine_lps, dtype=np.float64))
    names = {int(roi.ROINumber): str(roi.ROIName) for roi in ds.StructureSetROISequence}
    masks = {}
    for roi_contour in ds.ROIContourSequence:
        name = names[int(roi_contour.ReferencedROINumber)]
        polygons: dict[int, list[np.ndarray]] = {}
        for contour in roi_contour.get("ContourSequence", []):
            points = np.asarray(contour.ContourData, dtype=np.float64).reshape(-1, 3)
            voxels = (to_voxel[:3, :3] @ points.T).T + to_voxel[:3, 3]
            k = round(float(voxels[:, 2].mean()))
            if not 0 <= k < shape[2] or np.abs(voxels[:, 2] - k).max() > 0.01:
                raise ValueError(f"{path}: a contour of {name!r} lies off the grid's slices")
            polygons.setdefault(k, []).append(voxels[:, :2])
        mask = np.zeros(tuple(int(n) for n in shape), bool)
        for k, outlines in polygons.items():
            mask[:, :, k] = _fill_slice(outlines, (int(shape[0]), int(shape[1])))
        masks[name] = mask
    return masks


def _fill_slice(outlines: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Fill a slice's outlines, holes by nesting depth.

    An outline at even depth adds its area; one at odd depth (a hole) removes the inside
    of its outline (the outline itself, through boundary voxels, stays).
    """
    from skimage.draw import line, polygon

    inside, filled = [], []
    for outline in outlines:
        area = np.zeros(shape, bool)
        if len(outline) >= 3:
            area[polygon(outline[:, 0], outline[:, 1], shape)] = True
        edge = np.zeros(shape, bool)
        corners = np.rint(outline).astype(int)
        for (i0, j0), (i1, j1) in zip(corners, np.roll(corners, -1, axis=0), strict=True):
            i, j = line(i0, j0, i1, j1)  # through the boundary voxels' centres
            keep = (i >= 0) & (i < shape[0]) & (j >= 0) & (j < shape[1])
            edge[i[keep], j[keep]] = True
        inside.append(area & ~edge)
        filled.append(area | edge)
    depths = []
    for n, outline in enumerate(outlines):
        i, j = np.clip(np.rint(outline[0]).astype(int), 0, np.array(shape) - 1)
        depths.append(
            sum(
                m != n and bool(filled[m][i, j]) and filled[m].sum() > filled[n].sum()
                for m in range(len(outlines))
            )
        )
    result = np.zeros(shape, bool)
    for n in np.argsort(depths, kind="stable"):
        if depths[n] % 2:
            result &= ~inside[n]
        else:
            result |= filled[n]
    return result
