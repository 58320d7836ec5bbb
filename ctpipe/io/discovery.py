"""Find every DICOM image series in a folder tree, reading headers only.

Files are grouped by ``SeriesInstanceUID``. Where that UID is empty or missing (a real
occurrence: anonymisers sometimes blank it), slices are grouped by the tags that a series
shares instead (frame of reference, orientation, matrix, pixel spacing, kernel,
description, series number), with a warning. Each series is then checked for a regular
slice grid by :mod:`ctpipe.io.geometry`; what is wrong is recorded in
:attr:`DicomSeries.problems` rather than raised, so a scan of a whole archive never stops
on one bad series.

Example:
    >>> from ctpipe.io.discovery import scan_dicom
    >>> scan = scan_dicom("/data/study")  # doctest: +SKIP
    >>> [s.describe() for s in scan.series]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ctpipe.errors import CorruptDicomError, InputError, NoSeriesFoundError, NotDicomError
from ctpipe.io.dicom_header import SliceHeader, read_slice_header
from ctpipe.io.geometry import SliceLayout, analyse_slice_positions, orientation_problem
from ctpipe.io.header_checks import rescale_problems, size_problems, value_problems

#: Above this many files a progress bar is shown while scanning (when asked for).
PROGRESS_MIN_FILES = 200
#: Header values without which slices cannot be placed in space (problems naming them).
GEOMETRY_VALUES = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows")
#: Why a path that exists but is neither a file nor a folder is refused.
NOT_REGULAR = (
    "is not a regular file or folder (a pipe, socket or device); ctpipe reads no such input"
)
#: How a problem about a damaged file beside a series' slices begins.
DAMAGED_NEIGHBOUR = "damaged DICOM file"
#: How many file names a warning lists before it says "and N more".
MAX_NAMES_IN_MESSAGE = 5


@dataclass
class DicomSeries:
    """One image series found on disk, with its slices in order along the normal.

    Attributes:
        key: The SeriesInstanceUID, or ``"nouid-<hash>"`` for a series grouped by
            other tags because its files have no UID.
        slices: Slice headers, sorted along the slice normal when the geometry allows.
        layout: The slice layout (None when orientation is unusable or slices mixed).
        problems: Everything that stops this series from being read as a regular volume.
        notes: Things worth knowing that do not stop reading (e.g. the UID fallback).
    """

    key: str
    slices: list[SliceHeader]
    layout: SliceLayout | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def first(self) -> SliceHeader:
        """The first slice (lowest along the normal)."""
        return self.slices[0]

    @property
    def modality(self) -> str:
        """Modality of the series (of its first slice)."""
        return self.first.modality

    @property
    def folder(self) -> Path:
        """The folder holding the first slice."""
        return self.first.path.parent

    @property
    def is_multiframe(self) -> bool:
        """True when the series is held in multi-frame files."""
        return any(s.number_of_frames > 1 for s in self.slices)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Volume shape in ctpipe's (i, j, k) = (columns, rows, slices) order."""
        frames = sum(max(s.number_of_frames, 1) for s in self.slices)
        return (self.first.columns, self.first.rows, frames)

    @property
    def spacing(self) -> tuple[float, float, float] | None:
        """Voxel size (mm) along (i, j, k), when known."""
        ps = self.first.pixel_spacing
        if ps is None:
            return None
        k = self.layout.spacing if self.layout else (self.first.slice_thickness or 0.0)
        return (float(ps[1]), float(ps[0]), float(k))

    def describe(self) -> dict[str, object]:
        """A flat summary, as ``ctpipe info`` prints it."""
        first = self.first
        spacing = self.spacing
        return {
            "patient": first.patient_id,
            "study": first.study_instance_uid,
            "series": self.key,
            "modality": self.modality,
            "description": first.series_description,
            "slices": self.shape[2],
            "size": f"{self.shape[0]}x{self.shape[1]}",
            "spacing": "x".join(f"{v:.3g}" for v in spacing) if spacing else "?",
            "kernel": first.convolution_kernel,
            "folder": str(self.folder),
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


@dataclass
class DicomScan:
    """Result of scanning a folder tree.

    Attributes:
        root: The scanned path.
        series: Image series found, ordered by patient, study and series number.
        skipped: Files that are not DICOM (skipped with a warning).
        unreadable: DICOM-looking files that could not be parsed, with the reason.
        non_image: DICOM files with no image (DICOMDIR, structured reports, ...).
    """

    root: Path
    series: list[DicomSeries]
    skipped: list[Path] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    non_image: list[Path] = field(default_factory=list)


def scan_dicom(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    progress: bool = False,
) -> DicomScan:
    """Scan a folder tree (or a list of files) for DICOM image series.

    Args:
        source: A folder, a single file, or a list of files.
        progress: Show a progress bar on stderr for large trees.

    Returns:
        The :class:`DicomScan`. Non-DICOM files are skipped with one warning.

    Raises:
        InputError: When ``source`` does not exist.
        NoSeriesFoundError: When no DICOM image is found at all.

    Example:
        >>> scan = scan_dicom("/data/CT")  # doctest: +SKIP
        >>> len(scan.series)  # doctest: +SKIP
        1
    """
    root, files = _list_files(source)
    scan = DicomScan(root=root, series=[])
    headers = []
    for path in _maybe_progress(files, progress):
        header = _read_header(path, scan)
        if header is not None:
            headers.append(header)
    _warn_skipped(scan)
    if not headers:
        raise NoSeriesFoundError(root, _nothing_found_reason(files, scan))
    scan.series = group_series(headers)
    _mark_damaged_neighbours(scan)
    return scan


def _mark_damaged_neighbours(scan: DicomScan) -> None:
    """A damaged file beside a series' slices may be one of them: the series is incomplete.

    Its header cannot be read, so which series it belongs to is unknown; every series
    with a slice in the same folder records it as a problem (``allow_irregular`` reads
    the series anyway, as for a gap).
    """
    damaged: dict[Path, list[tuple[Path, str]]] = defaultdict(list)
    for path, why in scan.unreadable:
        damaged[path.parent].append((path, why))
    if not damaged:
        return
    for series in scan.series:
        near = [d for folder in {s.path.parent for s in series.slices} for d in damaged[folder]]
        if near:
            path, why = near[0]
            more = f" and {len(near) - 1} more" if len(near) > 1 else ""
            series.problems.append(
                f"{DAMAGED_NEIGHBOUR} {path.name}{more} ({why}) lies beside the slices, so the "
                "series may be incomplete; repair or remove it (or pass --allow-irregular)"
            )


def discover_series(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> list[DicomSeries]:
    """Return every DICOM image series under ``source`` (see :func:`scan_dicom`).

    Example:
        >>> [s.key for s in discover_series("/data/CT")]  # doctest: +SKIP
        ['1.2.840.113619.2.55.3']
    """
    return scan_dicom(source).series


def _list_files(source: str | os.PathLike[str] | Sequence) -> tuple[Path, list[Path]]:
    if isinstance(source, (str, os.PathLike)):
        root = Path(source)
        if not root.exists():
            raise InputError(root, "no such file or folder")
        if root.is_file():
            return root, [root]
        if not root.is_dir():
            raise InputError(root, NOT_REGULAR)
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        return root, files
    files = [Path(p) for p in source]
    if not files:
        raise InputError(".", "an empty list of files was given")
    for path in files:
        if not path.is_file():
            raise InputError(path, "no such file")
    return files[0].parent, files


def _maybe_progress(files: list[Path], progress: bool) -> Iterable[Path]:
    if progress and len(files) >= PROGRESS_MIN_FILES:
        from tqdm import tqdm

        return tqdm(files, desc="scanning DICOM headers", unit="file", leave=False)
    return files


def _nothing_found_reason(files: list[Path], scan: DicomScan) -> str:
    if not files:
        return "no files found (empty folder)"
    parts = [f"no DICOM image series among {len(files)} file(s)"]
    if scan.skipped:
        parts.append(f"{len(scan.skipped)} not DICOM")
    if scan.unreadable:
        path, why = scan.unreadable[0]
        parts.append(f"{len(scan.unreadable)} unreadable (first: {path.name}: {why})")
    if scan.non_image:
        parts.append(f"{len(scan.non_image)} DICOM without image data")
    return "; ".join(parts)


def _warn_skipped(scan: DicomScan) -> None:
    if scan.skipped:
        warnings.warn(
            f"skipped {len(scan.skipped)} non-DICOM file(s) under {scan.root}: "
            + _names(scan.skipped),
            stacklevel=3,
        )
    if scan.unreadable:
        listed = "; ".join(f"{p}: {why}" for p, why in scan.unreadable[:MAX_NAMES_IN_MESSAGE])
        warnings.warn(
            f"skipped {len(scan.unreadable)} damaged DICOM file(s): {listed}", stacklevel=3
        )


def _names(paths: Sequence[Path]) -> str:
    shown = ", ".join(str(p) for p in paths[:MAX_NAMES_IN_MESSAGE])
    more = len(paths) - MAX_NAMES_IN_MESSAGE
    return shown + (f" and {more} more" if more > 0 else "")


def _read_header(path: Path, scan: DicomScan) -> SliceHeader | None:
    """Read one header, recording a non-DICOM, damaged, unreadable or image-less file.

    Nothing one file holds stops the scan: a file that cannot be opened (no permission)
    or whose header breaks the parser in an unforeseen way is recorded as unreadable.
    """
    try:
        header = read_slice_header(path)
    except NotDicomError:
        scan.skipped.append(path)
        return None
    except CorruptDicomError as exc:
        scan.unreadable.append((path, exc.problem))
        return None
    except OSError as exc:
        scan.unreadable.append((path, f"cannot be opened: {exc.strerror or exc}"))
        return None
    except Exception as exc:  # a parser failure no rule above foresaw: isolate the file
        scan.unreadable.append((path, f"cannot parse header ({type(exc).__name__}: {exc})"))
        return None
    if header is None:
        scan.non_image.append(path)
    return header


def group_series(headers: Sequence[SliceHeader]) -> list[DicomSeries]:
    """Group slice headers into series and check each one's geometry.

    Args:
        headers: Headers of image files, from any number of series.

    Returns:
        The series, ordered by patient, study, series number and key.

    Example:
        >>> group_series([])
        []
    """
    by_uid: dict[str, list[SliceHeader]] = defaultdict(list)
    no_uid: dict[tuple, list[SliceHeader]] = defaultdict(list)
    for header in headers:
        if header.series_instance_uid:
            by_uid[header.series_instance_uid].append(header)
        else:
            no_uid[header.grouping_key()].append(header)
    series = [DicomSeries(uid, slices) for uid, slices in by_uid.items()]
    series += [_fallback_series(key, slices) for key, slices in no_uid.items()]
    if no_uid:
        count = sum(len(s) for s in no_uid.values())
        warnings.warn(
            f"{count} file(s) have no SeriesInstanceUID "
            f"(e.g. {next(iter(no_uid.values()))[0].path}); "
            f"grouped into {len(no_uid)} series by frame of reference, orientation, matrix, "
            "pixel spacing, kernel, description and series number",
            stacklevel=3,
        )
    for s in series:
        check_series(s)
    return sorted(series, key=_series_sort_key)


def _fallback_series(key: tuple, slices: list[SliceHeader]) -> DicomSeries:
    digest = hashlib.sha1(repr(key).encode()).hexdigest()[:12]
    series = DicomSeries(f"nouid-{digest}", slices)
    series.notes.append(
        "no SeriesInstanceUID: slices grouped by frame of reference, orientation, matrix, "
        "pixel spacing, kernel, description and series number"
    )
    return series


def _series_sort_key(series: DicomSeries) -> tuple:
    first = series.first
    return (first.patient_id, first.study_instance_uid, first.series_number or 0, series.key)


def check_series(series: DicomSeries) -> None:
    """Sort a series' slices along the normal and record its problems in place.

    Header values (:mod:`ctpipe.io.header_checks`: HU rescale, geometry values, pixel
    layout, declared size) are checked first. Whatever goes wrong while checking is
    recorded as a problem of this series, never raised, so one series cannot stop a scan.

    Example:
        >>> check_series(series)  # doctest: +SKIP
        >>> series.problems  # doctest: +SKIP
        ['missing slice(s): gap of 6.000 mm between z=3.000 and z=9.000 ...']
    """
    try:
        _check_series(series)
    except Exception as exc:  # an unforeseen header combination: this series only
        series.layout = None
        series.problems.append(
            f"cannot check the slices of the series in {series.folder} "
            f"({type(exc).__name__}: {exc})"
        )


def _check_series(series: DicomSeries) -> None:
    slices = series.slices
    series.problems = [f"{s.path}: {s.pixel_data_problem}" for s in slices if s.pixel_data_problem]
    values = value_problems(slices)
    series.problems += values + rescale_problems(slices) + size_problems(slices)
    if any(p.startswith(GEOMETRY_VALUES) for p in values):
        return  # the slices cannot be placed in space
    grids = {s.grid_key() for s in slices}
    if len(grids) > 1:
        series.problems.append(_mixed_grid_problem(slices))
        return
    first = slices[0]
    if series.is_multiframe:
        _check_multiframe(series)
        return
    incomplete = [
        s for s in slices if s.orientation is None or s.position is None or s.pixel_spacing is None
    ]
    if incomplete:
        series.problems.append(_missing_geometry_problem(incomplete[0]))
        return
    bad_orientation = orientation_problem(first.orientation)
    if bad_orientation:
        series.problems.append(bad_orientation)
        return
    layout = analyse_slice_positions(
        [s.position for s in slices],  # type: ignore[misc]
        first.orientation,
        default_spacing=first.slice_thickness or 1.0,
    )
    series.slices = [slices[i] for i in layout.order]
    series.layout = layout
    series.problems += _named_duplicates(series) + [
        p for p in layout.problems if not p.startswith("duplicate")
    ]


def _check_multiframe(series: DicomSeries) -> None:
    """Multi-frame files carry their geometry per frame; one file makes one volume."""
    if len(series.slices) > 1:
        names = _names([s.path for s in series.slices])
        series.problems.append(
            f"{len(series.slices)} multi-frame files in one series ({names}): "
            "read each file on its own (pass the file path)"
        )
    else:
        series.notes.append(f"multi-frame: {series.first.number_of_frames} frames in one file")


def _mixed_grid_problem(slices: Sequence[SliceHeader]) -> str:
    counts: dict[tuple, int] = defaultdict(int)
    for s in slices:
        counts[s.grid_key()] += 1
    parts = [
        f"{n} slice(s) {k[1]}x{k[0]} spacing {k[2]} orientation {k[3]}" for k, n in counts.items()
    ]
    return "slices of different size, spacing or orientation in one series: " + "; ".join(parts)


def _missing_geometry_problem(first: SliceHeader) -> str:
    missing = [
        name
        for name, value in (
            ("ImageOrientationPatient", first.orientation),
            ("ImagePositionPatient", first.position),
            ("PixelSpacing", first.pixel_spacing),
        )
        if value is None
    ]
    return f"{first.path}: missing {', '.join(missing)}, so the slices cannot be placed in space"


def _named_duplicates(series: DicomSeries) -> list[str]:
    layout = series.layout
    if layout is None or not any(p.startswith("duplicate") for p in layout.problems):
        return []
    pairs = []
    for a, b, za, zb in zip(
        series.slices, series.slices[1:], layout.positions, layout.positions[1:], strict=False
    ):
        if abs(zb - za) <= 1e-3:
            pairs.append(f"{a.path.name} and {b.path.name} at {za:.3f} mm")
    shown = "; ".join(pairs[:MAX_NAMES_IN_MESSAGE])
    more = (
        f" and {len(pairs) - MAX_NAMES_IN_MESSAGE} more"
        if len(pairs) > MAX_NAMES_IN_MESSAGE
        else ""
    )
    return [f"duplicate slice positions in {series.folder}: {shown}{more}"]
